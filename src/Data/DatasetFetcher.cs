using System.Security.Cryptography;

namespace ResnetMnist.Data;

/// <summary>
/// The one dataset download: fetches the files a dataset's <see cref="IDatasetFiles.Downloads"/> lists that are still
/// needed, in order. Each file comes from its mirrors in order; a download goes to a temp file beside its target, is
/// md5-checked, and only then takes the target's name (<see cref="HttpDownload"/>). A <c>.tar.gz</c> is then unpacked
/// into its one folder (<see cref="TarGzArchive"/>; files already there are kept). All or nothing: when any file
/// fails, every file and folder this call created is removed again, and nothing that existed before is touched.
/// </summary>
public static class DatasetFetcher
{
    /// <summary>Downloads (and unpacks) what <paramref name="files"/> still needs under <paramref name="root"/>.</summary>
    /// <param name="progress">Reports (file name, bytes done, total bytes or null).</param>
    /// <param name="client">The HTTP client (default: a new one with a 30-minute timeout).</param>
    /// <exception cref="DataException">No mirror gave a file with the right md5, or its archive was refused; one line naming the file.</exception>
    public static void Fetch(IDatasetFiles files, string root, IProgress<(string File, long Done, long? Total)>? progress = null,
        HttpClient? client = null, CancellationToken cancel = default)
    {
        var created = new Created();
        var own = client is null;
        client ??= new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        try
        {
            foreach (var file in files.Downloads)
            {
                if (!files.Needs(root, file)) continue;
                var target = Path.Combine(root, file.Target);
                // An archive already downloaded (torchvision keeps it beside its folder) is unpacked, not fetched again.
                if (!(file.ExtractsTo is not null && File.Exists(target)))
                {
                    created.Folders(Path.GetDirectoryName(Path.GetFullPath(target))!);
                    Download(file, target, files.ByHand(root), client, progress, cancel);
                    created.Files.Add(target);
                }
                if (file.ExtractsTo is not null)
                {
                    created.Folders(Path.Combine(Path.GetFullPath(root), file.ExtractsTo));
                    created.Files.AddRange(TarGzArchive.Extract(target, root, file.ExtractsTo, file.Md5));
                }
            }
        }
        catch
        {
            created.Remove();
            throw;
        }
        finally
        {
            if (own) client.Dispose();
        }
    }

    /// <summary>One file from its mirrors in order, md5-checked; a <see cref="DataException"/> lists what every mirror did.</summary>
    static void Download(RemoteFile file, string target, string byHand, HttpClient client,
        IProgress<(string File, long Done, long? Total)>? progress, CancellationToken cancel)
    {
        var name = Path.GetFileName(target);
        var errors = new List<string>();
        foreach (var url in file.Urls)
        {
            try
            {
                var fileProgress = progress is null ? null : new FileProgress(name, progress);
                var (accepted, md5) = HttpDownload.ToFile(client, url, target, HashAlgorithmName.MD5, hex => hex == file.Md5, fileProgress, cancel);
                if (accepted) return;
                errors.Add($"{url}: md5 {md5} != expected {file.Md5} (file discarded)");
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancel.IsCancellationRequested)
            {
                errors.Add($"{url}: {e.Message}");
            }
        }
        throw new DataException($"{target}: download failed from every mirror ({string.Join("; ", errors)}); {byHand}");
    }

    /// <summary>What one fetch created, to be removed again when it fails: its files, then its folders (deepest first) where empty.</summary>
    sealed class Created
    {
        public List<string> Files { get; } = [];
        readonly List<string> _folders = [];

        /// <summary>Notes the folders of <paramref name="dir"/> that do not exist yet, and creates them.</summary>
        public void Folders(string dir)
        {
            var missing = new List<string>();
            for (var d = Path.GetFullPath(dir); d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Add(d);
            Directory.CreateDirectory(dir);
            _folders.AddRange(missing);
        }

        public void Remove()
        {
            foreach (var f in Enumerable.Reverse(Files))
                try { File.Delete(f); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            foreach (var d in _folders.OrderByDescending(d => d.Length))
                try { if (Directory.Exists(d) && !Directory.EnumerateFileSystemEntries(d).Any()) Directory.Delete(d); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>Forwards one file's byte counts, synchronously, with the file's name.</summary>
    sealed class FileProgress(string name, IProgress<(string File, long Done, long? Total)> inner) : IProgress<(long Done, long? Total)>
    {
        public void Report((long Done, long? Total) value) => inner.Report((name, value.Done, value.Total));
    }

    /// <summary>Lower-case hex md5 of a file, as torchvision's <c>check_md5</c> computes it.</summary>
    public static string Md5Of(string path)
    {
        using var f = InputFiles.OpenRead(path, "a dataset file", long.MaxValue, m => new DataException($"{path}: {m}"));
        return Convert.ToHexStringLower(MD5.HashData(f));
    }
}
