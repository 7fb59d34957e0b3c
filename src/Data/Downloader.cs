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
        // The folders this call creates, outermost first: removed again if they are still empty when a download fails.
        var created = new List<string>();
        for (var d = Path.GetFullPath(dir); d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) created.Insert(0, d);
        Directory.CreateDirectory(dir);
        client ??= new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        try
        {
            FetchInto(files, root, dir, client, progress, cancel);
        }
        catch
        {
            for (int i = created.Count - 1; i >= 0; i--)
                try { if (!Directory.EnumerateFileSystemEntries(created[i]).Any()) Directory.Delete(created[i]); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }

    static void FetchInto(MnistFiles files, string root, string dir, HttpClient client, IProgress<(string File, long Done, long? Total)>? progress, CancellationToken cancel)
    {
        foreach (var name in MnistFiles.All)
        {
            if (files.Find(root, name) is not null) continue;
            var target = Path.Combine(dir, name + ".gz");
            var errors = new List<string>();
            bool ok = false;
            foreach (var mirror in files.Mirrors)
            {
                var url = mirror + name + ".gz";
                try
                {
                    var fileProgress = progress is null ? null : new FileProgress(name, progress);
                    var (accepted, md5) = HttpDownload.ToFile(client, url, target, HashAlgorithmName.MD5, hex => hex == files.Md5[name], fileProgress, cancel);
                    if (!accepted)
                    {
                        errors.Add($"{url}: md5 {md5} != expected {files.Md5[name]} (file discarded)");
                        continue;
                    }
                    ok = true;
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    errors.Add($"{url}: {e.Message}");
                }
            }
            if (!ok)
            {
                // The embedded sample is suggested only for MNIST and only where the package carries it.
                string sample = files.Dataset == "mnist" && PackagedFiles.SampleRoot is not null ? $", or use the packaged sample (data.root: {PackagedFiles.Sample}; `dotnet resnet-mnist train` with no config uses it)" : "";
                throw new DataException($"{target}: download failed from every mirror ({string.Join("; ", errors)}); " +
                                        $"copy the files into {dir} by hand (torchvision's layout){sample}");
            }
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

    /// <summary>Forwards one file's byte counts, synchronously, with the file's name.</summary>
    sealed class FileProgress(string name, IProgress<(string File, long Done, long? Total)> inner) : IProgress<(long Done, long? Total)>
    {
        public void Report((long Done, long? Total) value) => inner.Report((name, value.Done, value.Total));
    }

    static string Md5(string path)
    {
        using var f = InputFiles.OpenRead(path, "a dataset file", long.MaxValue, m => new DataException($"{path}: {m}"));
        return Convert.ToHexStringLower(MD5.HashData(f));
    }
}
