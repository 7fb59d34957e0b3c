namespace ResnetMnist.Data;

/// <summary>
/// torchvision's CIFAR files (<c>torchvision.datasets.CIFAR10</c> and <c>CIFAR100</c>: <c>base_folder</c>, <c>url</c>,
/// <c>filename</c>, <c>tgz_md5</c>, <c>train_list</c>, <c>test_list</c>, <c>meta</c>), with their md5 sums as torchvision
/// lists them, the keys their pickles hold, and their reader (<see cref="Cifar"/>).
/// </summary>
/// <param name="Title">The dataset's name in messages (<c>CIFAR-10</c>).</param>
/// <param name="Folder">torchvision's <c>base_folder</c> under <c>data.root</c>.</param>
/// <param name="LabelKey">The batches' label list torchvision reads (<c>labels</c>; CIFAR-100: <c>fine_labels</c>).</param>
/// <param name="BatchKeys">Every key a published batch holds.</param>
/// <param name="MetaKey">The meta file's class names (torchvision's <c>meta["key"]</c>).</param>
/// <param name="MetaKeys">Every key the published meta file holds.</param>
public sealed record CifarFiles(string Title, string Folder, string Url, string ArchiveName, string ArchiveMd5,
    IReadOnlyList<(string Name, string Md5)> TrainList, IReadOnlyList<(string Name, string Md5)> TestList,
    string MetaName, string MetaKey, string MetaMd5, string LabelKey, IReadOnlyList<string> BatchKeys, IReadOnlyList<string> MetaKeys) : IDatasetFiles
{
    public static readonly CifarFiles Cifar10 = new("CIFAR-10", "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        [
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ],
        [("test_batch", "40351d587109b95175f43aff81a1287e")],
        "batches.meta", "label_names", "5ff9c542aee3614f3951f8cda6e48888",
        "labels", ["batch_label", "labels", "data", "filenames"], ["label_names", "num_cases_per_batch", "num_vis"]);

    public static readonly CifarFiles Cifar100 = new("CIFAR-100", "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        [("train", "16019d7e3df5f24257cddd939b257f8d")],
        [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
        "meta", "fine_label_names", "7973b15100ade9c7d40fb424638fde48",
        "fine_labels", ["filenames", "batch_label", "fine_labels", "coarse_labels", "data"], ["fine_label_names", "coarse_label_names"]);

    /// <summary>CIFAR-100's <c>fine_label_names</c>, in label order (as its <c>meta</c> file lists them).</summary>
    public static readonly IReadOnlyList<string> Cifar100FineLabelNames =
    [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ];

    /// <summary>Every file of the extracted folder with its md5 (train batches, test batch, meta).</summary>
    public IReadOnlyDictionary<string, string> Md5 =>
        TrainList.Concat(TestList).Append((Name: MetaName, Md5: MetaMd5)).ToDictionary(f => f.Name, f => f.Md5);

    /// <summary><c>ROOT/cifar-10-batches-py</c> (torchvision's layout).</summary>
    public string BatchDir(string root) => Path.Combine(root, Folder);

    /// <summary><c>ROOT/cifar-10-python.tar.gz</c>, where torchvision's <c>download=True</c> puts the archive.</summary>
    public string ArchivePath(string root) => Path.Combine(root, ArchiveName);

    /// <summary>The batch files of a split, in torchvision's order (CIFAR-10's train: data_batch_1..5).</summary>
    public IReadOnlyList<string> Batches(bool train) => (train ? TrainList : TestList).Select(f => f.Name).ToList();

    string IDatasetFiles.Folder(string root) => BatchDir(root);

    /// <summary>The archive, unpacked into <see cref="Folder"/>.</summary>
    public IReadOnlyList<RemoteFile> Downloads => [new RemoteFile(ArchiveName, ArchiveMd5, [Url], Folder)];

    /// <summary>The archive is needed while any file of the folder is missing.</summary>
    public bool Needs(string root, RemoteFile file) => !FolderComplete(root);

    public string ByHand(string root) => $"copy torchvision's {ArchiveName} or its {Folder} folder into {root} by hand";

    bool FolderComplete(string root) => Md5.Keys.All(n => File.Exists(Path.Combine(BatchDir(root), n)));

    /// <summary>Every file of the folder is present, or the downloaded archive is (it is extracted when read).</summary>
    public bool Complete(string root) => FolderComplete(root) || File.Exists(ArchivePath(root));

    /// <summary>Reads one batch file (<see cref="Cifar.ReadBatch"/>).</summary>
    public Cifar.Batch ReadBatch(string path) => Cifar.ReadBatch(this, path);

    /// <summary>Reads the meta file (<see cref="Cifar.ReadMeta"/>).</summary>
    public Cifar.Meta ReadMeta(string path) => Cifar.ReadMeta(this, path);

    /// <summary>The class names of <c>ROOT/&lt;Folder&gt;/&lt;MetaName&gt;</c>, as torchvision's <c>classes</c>.</summary>
    public IReadOnlyList<string> ReadClasses(string root)
    {
        ExtractIfNeeded(root);
        var path = Path.Combine(BatchDir(root), MetaName);
        if (!Path.Exists(path)) throw Missing(root, path);
        return ReadMeta(path).LabelNames;
    }

    DataException Missing(string root, string path) =>
        new($"{path}: file not found; put torchvision's {Folder} folder in {root} (or {ArchiveName}), set data.download: true, or run `{ToolCommand.Name} data fetch`");

    /// <summary>Reads a split as torchvision's <c>CIFAR10</c>/<c>CIFAR100</c> does (its batch files in order), extracting the archive first when only it is present.</summary>
    public RawSplit Read(string root, bool train, int channels, int height, int width)
    {
        ExtractIfNeeded(root);
        var dir = BatchDir(root);
        var batches = new List<(string Path, Cifar.Batch Batch)>();
        foreach (var name in Batches(train))
        {
            var path = Path.Combine(dir, name);
            if (!Path.Exists(path)) throw Missing(root, path);
            var batch = ReadBatch(path);
            for (int i = 0; i < batch.Count; i++)
                if (batch.Labels[i] is < 0 or > 255)
                    throw new DataException($"{path}: label {batch.Labels[i]} at index {i} is outside 0..255");
            batches.Add((path, batch));
        }
        long total = batches.Sum(b => (long)b.Batch.Count);
        if (total * Cifar.ImageBytes > Array.MaxLength) throw new DataException($"{dir}: {total} images do not fit in memory at once");
        var pixels = new byte[total * Cifar.ImageBytes];
        var labels = new byte[total];
        var labelFiles = new List<(int Start, string File)>();
        int at = 0;
        foreach (var (path, b) in batches)
        {
            b.Pixels.AsSpan(0, b.Count * Cifar.ImageBytes).CopyTo(pixels.AsSpan(at * Cifar.ImageBytes));
            for (int i = 0; i < b.Count; i++) labels[at + i] = (byte)b.Labels[i];
            labelFiles.Add((at, path));
            at += b.Count;
        }
        var first = batches[0].Path;
        return new RawSplit(pixels, (int)total, labels, first, first, labelFiles);
    }

    /// <summary>
    /// Reads, with the tool's own restricted reader, every file torchvision unpickles with <c>pickle.load</c> (the
    /// train and test batches, the meta file), extracting the archive first when only it is there; a
    /// <see cref="DataException"/> names the first file that is missing or holds anything the published files do not.
    /// </summary>
    public void CheckPickles(string root)
    {
        ExtractIfNeeded(root);
        foreach (var name in Md5.Keys)
        {
            var path = Path.Combine(BatchDir(root), name);
            if (!Path.Exists(path)) throw new DataException($"{path}: file not found; torchvision's {Title} reader reads it");
            if (name == MetaName) ReadMeta(path);
            else ReadBatch(path);
        }
    }

    /// <summary>
    /// When <c>ROOT/&lt;Folder&gt;</c> is missing and <c>ROOT/&lt;ArchiveName&gt;</c> is present, extracts it (md5
    /// checked when <paramref name="checkMd5"/>); returns whether it extracted.
    /// </summary>
    public bool ExtractIfNeeded(string root, bool checkMd5 = true)
    {
        if (Directory.Exists(BatchDir(root)) || !File.Exists(ArchivePath(root))) return false;
        TarGzArchive.Extract(ArchivePath(root), root, Folder, checkMd5 ? ArchiveMd5 : null);
        return true;
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
                string what = name == MetaName ? $"{ReadMeta(path).LabelNames.Count} class names" : $"{ReadBatch(path).Count} images";
                string origin = DatasetFetcher.Md5Of(path) == md5 ? "md5 matches torchvision's" : "md5 differs from torchvision's (not the original file: a sample or a re-pickled copy)";
                result.Add((path, true, $"{what}, {origin}"));
            }
            catch (DataException e) { result.Add((path, false, e.Message)); }
        }
        return result;
    }
}
