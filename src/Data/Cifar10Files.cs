namespace ResnetMnist.Data;

/// <summary>
/// torchvision's CIFAR-10 files (<c>torchvision.datasets.CIFAR10</c>: <c>base_folder</c>, <c>url</c>, <c>filename</c>,
/// <c>tgz_md5</c>, <c>train_list</c>, <c>test_list</c>, <c>meta</c>), with their md5 sums as torchvision lists them.
/// </summary>
public sealed record Cifar10Files(string Dataset, string Folder, string Url, string ArchiveName, string ArchiveMd5,
    IReadOnlyList<(string Name, string Md5)> TrainList, IReadOnlyList<(string Name, string Md5)> TestList,
    string MetaName, string MetaKey, string MetaMd5) : IDatasetFiles
{
    public static readonly Cifar10Files Cifar10 = new("cifar10", "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        [
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ],
        [("test_batch", "40351d587109b95175f43aff81a1287e")],
        "batches.meta", "label_names", "5ff9c542aee3614f3951f8cda6e48888");

    /// <summary>Every file of the extracted folder with its md5 (train batches, test batch, meta).</summary>
    public IReadOnlyDictionary<string, string> Md5 =>
        TrainList.Concat(TestList).Append((Name: MetaName, Md5: MetaMd5)).ToDictionary(f => f.Name, f => f.Md5);

    /// <summary><c>ROOT/cifar-10-batches-py</c> (torchvision's layout).</summary>
    public string BatchDir(string root) => Path.Combine(root, Folder);

    /// <summary><c>ROOT/cifar-10-python.tar.gz</c>, where torchvision's <c>download=True</c> puts the archive.</summary>
    public string ArchivePath(string root) => Path.Combine(root, ArchiveName);

    /// <summary>The batch files of a split, in torchvision's order (train: data_batch_1..5).</summary>
    public IReadOnlyList<string> Batches(bool train) => (train ? TrainList : TestList).Select(f => f.Name).ToList();

    /// <summary>Lower-case hex md5 of a file, as torchvision's <c>check_md5</c> computes it.</summary>
    public static string Md5Of(string path)
    {
        using var f = InputFiles.OpenRead(path, "a dataset file", long.MaxValue, m => new DataException($"{path}: {m}"));
        return Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(f));
    }

    public string Title => "CIFAR-10";

    string IDatasetFiles.Folder(string root) => BatchDir(root);

    /// <summary>Every batch file is present, or the downloaded archive is (it is extracted when read).</summary>
    public bool Complete(string root) =>
        Md5.Keys.All(n => File.Exists(Path.Combine(BatchDir(root), n))) || File.Exists(ArchivePath(root));

    /// <summary>Reads a split as torchvision's <c>CIFAR10</c> does (train: data_batch_1..5 in order), extracting the archive first when only it is present.</summary>
    public RawSplit Read(string root, bool train, int channels, int height, int width)
    {
        Data.Cifar10.ExtractIfNeeded(root);
        var dir = BatchDir(root);
        var batches = new List<(string Path, Data.Cifar10.Batch Batch)>();
        foreach (var name in Batches(train))
        {
            var path = Path.Combine(dir, name);
            if (!Path.Exists(path))
                throw new DataException($"{path}: file not found; put torchvision's {Folder} folder in {root} (or {ArchiveName}), " +
                                        "set data.download: true, or run `dotnet resnet-mnist data fetch`");
            var batch = Data.Cifar10.ReadBatch(path);
            for (int i = 0; i < batch.Count; i++)
                if (batch.Labels[i] is < 0 or > 255)
                    throw new DataException($"{path}: label {batch.Labels[i]} at index {i} is outside 0..255");
            batches.Add((path, batch));
        }
        long total = batches.Sum(b => (long)b.Batch.Count);
        if (total * Data.Cifar10.ImageBytes > Array.MaxLength) throw new DataException($"{dir}: {total} images do not fit in memory at once");
        var pixels = new byte[total * Data.Cifar10.ImageBytes];
        var labels = new byte[total];
        var labelFiles = new List<(int Start, string File)>();
        int at = 0;
        foreach (var (path, b) in batches)
        {
            b.Pixels.AsSpan(0, b.Count * Data.Cifar10.ImageBytes).CopyTo(pixels.AsSpan(at * Data.Cifar10.ImageBytes));
            for (int i = 0; i < b.Count; i++) labels[at + i] = (byte)b.Labels[i];
            labelFiles.Add((at, path));
            at += b.Count;
        }
        var first = batches[0].Path;
        return new RawSplit(pixels, (int)total, labels, first, first, labelFiles);
    }

    /// <summary>
    /// Reads, with the tool's own restricted reader, every file torchvision's <c>CIFAR10</c> unpickles with
    /// <c>pickle.load</c> (data_batch_1..5, test_batch, batches.meta), extracting the archive first when only it is
    /// there; a <see cref="DataException"/> names the first file that is missing or holds anything a CIFAR-10 file
    /// does not. Run before handing the folder to PyTorch, whose <c>pickle.load</c> would run what a file asks for.
    /// </summary>
    public void CheckPickles(string root)
    {
        Data.Cifar10.ExtractIfNeeded(root);
        foreach (var name in TrainList.Concat(TestList).Select(f => f.Name).Append(MetaName))
        {
            var path = Path.Combine(BatchDir(root), name);
            if (!Path.Exists(path)) throw new DataException($"{path}: file not found; torchvision's CIFAR10 reads it");
            if (name == MetaName) Data.Cifar10.ReadMeta(path);
            else Data.Cifar10.ReadBatch(path);
        }
    }

    /// <summary>Downloads <see cref="Url"/> (md5-checked, temp file + rename) unless the files are there, then extracts it.</summary>
    public void Fetch(string root, IProgress<(string File, long Done, long? Total)>? progress = null, HttpClient? client = null, CancellationToken cancel = default)
    {
        if (!Complete(root))
        {
            Directory.CreateDirectory(root);
            client ??= new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
            var target = ArchivePath(root);
            try
            {
                var fileProgress = progress is null ? null : new Progress<(long Done, long? Total)>(p => progress.Report((ArchiveName, p.Done, p.Total)));
                var (accepted, md5) = HttpDownload.ToFile(client, Url, target, System.Security.Cryptography.HashAlgorithmName.MD5,
                    hex => hex == ArchiveMd5, fileProgress, cancel);
                if (!accepted) throw new DataException($"{Url}: md5 {md5} != expected {ArchiveMd5} (file discarded)");
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                throw new DataException($"{target}: download from {Url} failed ({e.Message}); copy torchvision's {ArchiveName} or its {Folder} folder into {root} by hand");
            }
        }
        Data.Cifar10.ExtractIfNeeded(root);
    }

    /// <summary>Each file of the folder: present, md5 against torchvision's list, readable.</summary>
    public List<(string File, bool Ok, string Detail)> Verify(string root)
    {
        var result = new List<(string, bool, string)>();
        foreach (var (name, md5) in Md5)
        {
            var path = Path.Combine(BatchDir(root), name);
            if (!File.Exists(path)) { result.Add((path, false, "missing")); continue; }
            try
            {
                string what = name == MetaName ? $"{Data.Cifar10.ReadClasses(path).Count} class names" : $"{Data.Cifar10.ReadBatch(path).Count} images";
                string origin = Md5Of(path) == md5 ? "md5 matches torchvision's" : "md5 differs from torchvision's (not the original file: a sample or a re-pickled copy)";
                result.Add((path, true, $"{what}, {origin}"));
            }
            catch (DataException e) { result.Add((path, false, e.Message)); }
        }
        return result;
    }
}
