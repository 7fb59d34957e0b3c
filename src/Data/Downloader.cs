using System.Security.Cryptography;

namespace ResnetMnist.Data;

/// <summary>
/// Fetches a dataset's four files from torchvision's mirrors (in order) into <c>ROOT/&lt;Folder&gt;/raw/</c>:
/// each download goes to a temp file, is md5-checked, and only then renamed into place; a bad file is deleted.
/// </summary>
public static class Downloader
{
    /// <summary>Downloads the files that are missing. Progress reports (file, bytes done, total bytes or null).</summary>
    public static void Fetch(MnistFiles files, string root, IProgress<(string File, long Done, long? Total)>? progress = null,
        HttpClient? client = null, CancellationToken cancel = default)
    {
        var dir = files.RawDir(root);
        Directory.CreateDirectory(dir);
        client ??= new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        foreach (var name in MnistFiles.All)
        {
            if (files.Find(root, name) is not null) continue;
            var target = Path.Combine(dir, name + ".gz");
            var errors = new List<string>();
            bool ok = false;
            foreach (var mirror in files.Mirrors)
            {
                var url = mirror + name + ".gz";
                var tmp = target + ".part";
                try
                {
                    using (var response = client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancel).GetAwaiter().GetResult())
                    {
                        response.EnsureSuccessStatusCode();
                        long? total = response.Content.Headers.ContentLength;
                        using var src = response.Content.ReadAsStream(cancel);
                        using var dst = File.Create(tmp);
                        var buf = new byte[1 << 16];
                        long done = 0;
                        int n;
                        while ((n = src.Read(buf)) > 0)
                        {
                            dst.Write(buf, 0, n);
                            done += n;
                            progress?.Report((name, done, total));
                        }
                    }
                    var md5 = Md5(tmp);
                    if (md5 != files.Md5[name])
                    {
                        File.Delete(tmp);
                        errors.Add($"{url}: md5 {md5} != expected {files.Md5[name]} (file discarded)");
                        continue;
                    }
                    File.Move(tmp, target, overwrite: true);
                    ok = true;
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    if (File.Exists(tmp)) File.Delete(tmp);
                    errors.Add($"{url}: {e.Message}");
                }
            }
            if (!ok)
                throw new DataException($"{target}: download failed from every mirror ({string.Join("; ", errors)}); " +
                                        $"copy the files into {dir} by hand (torchvision's layout), or use the embedded sample (data.root: data)");
        }
    }

    /// <summary>Checks each file: present, md5 (for torchvision's originals) and readable IDX. Returns one line per file.</summary>
    public static List<(string File, bool Ok, string Detail)> Verify(MnistFiles files, string root)
    {
        var result = new List<(string, bool, string)>();
        foreach (var name in MnistFiles.All)
        {
            var path = files.Find(root, name);
            if (path is null) { result.Add((Path.Combine(files.RawDir(root), name + ".gz"), false, "missing")); continue; }
            try
            {
                string count = name.Contains("images") ? $"{Idx.ReadImages(path).Count} images" : $"{Idx.ReadLabels(path).Length} labels";
                string md5 = path.EndsWith(".gz") ? Md5(path) : "";
                string origin = md5 == files.Md5[name] ? "md5 matches torchvision's" : path.EndsWith(".gz") ? "md5 differs from torchvision's (not the original file: a sample or a re-compression)" : "raw file";
                result.Add((path, true, $"{count}, {origin}"));
            }
            catch (DataException e) { result.Add((path, false, e.Message)); }
        }
        return result;
    }

    static string Md5(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(f));
    }
}
