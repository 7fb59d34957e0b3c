using System.Security.Cryptography;

namespace ResnetMnist.Data;

/// <summary>
/// The one download routine: streams a URL into a temp file beside the target, hashing as it goes, and renames it
/// into place only when the hash is accepted; otherwise (and on any error) the temp file is deleted, so a bad or
/// partial download never takes the target's name.
/// </summary>
public static class HttpDownload
{
    /// <param name="accept">Decides on the hex digest; false discards the file.</param>
    /// <param name="progress">Bytes written so far and the total when the server sends one.</param>
    /// <returns>Whether the file was accepted, and its hex digest.</returns>
    /// <exception cref="HttpRequestException">The server could not be reached or answered with an error.</exception>
    public static (bool Accepted, string Hex) ToFile(HttpClient http, string url, string target, HashAlgorithmName hash,
        Func<string, bool> accept, IProgress<(long Done, long? Total)>? progress = null, CancellationToken cancel = default)
    {
        string hex = "";
        bool accepted = AtomicFile.WriteIf(target, output =>
        {
            using var hasher = IncrementalHash.CreateHash(hash);
            using (var response = http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancel).GetAwaiter().GetResult())
            {
                response.EnsureSuccessStatusCode();
                long? total = response.Content.Headers.ContentLength;
                using var input = response.Content.ReadAsStream(cancel);
                var buffer = new byte[1 << 20];
                long done = 0;
                int n;
                while ((n = input.Read(buffer)) > 0)
                {
                    output.Write(buffer, 0, n);
                    hasher.AppendData(buffer, 0, n);
                    done += n;
                    progress?.Report((done, total));
                }
            }
            hex = Convert.ToHexStringLower(hasher.GetHashAndReset());
            return accept(hex);
        });
        return (accepted, hex);
    }
}
