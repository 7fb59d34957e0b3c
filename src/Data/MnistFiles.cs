namespace ResnetMnist.Data;

/// <summary>
/// torchvision's IDX file names, folders, mirrors and md5 sums for MNIST and Fashion-MNIST, and their reader. The
/// files are downloaded as <c>.gz</c> and read as they are (the reader takes <c>.gz</c> or raw IDX).
/// </summary>
/// <param name="PackagedSample">The tool package carries a sample of this dataset (<see cref="PackagedFiles.Sample"/>): suggested when a download fails.</param>
public sealed record MnistFiles(string Dataset, string Folder, string[] Mirrors, IReadOnlyDictionary<string, string> Md5, bool PackagedSample = false) : IDatasetFiles
{
    public const string TrainImages = "train-images-idx3-ubyte";
    public const string TrainLabels = "train-labels-idx1-ubyte";
    public const string TestImages = "t10k-images-idx3-ubyte";
    public const string TestLabels = "t10k-labels-idx1-ubyte";
    public static readonly string[] All = [TrainImages, TrainLabels, TestImages, TestLabels];

    public static readonly MnistFiles Mnist = new("mnist", "MNIST",
        ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],   // https first; every file is md5-checked either way
        new Dictionary<string, string>
        {
            [TrainImages] = "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            [TrainLabels] = "d53e105ee54ea40749a09fcbcd1e9432",
            [TestImages] = "9fb629c4189551a2d022fa330f9573f3",
            [TestLabels] = "ec29112dd5afa0611ce80d1b7f02629c",
        }, PackagedSample: true);

    public static readonly MnistFiles FashionMnist = new("fashion-mnist", "FashionMNIST",
        ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        new Dictionary<string, string>
        {
            [TrainImages] = "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            [TrainLabels] = "25c81989df183df01b3e8a0aad5dffbe",
            [TestImages] = "bef4ecab320f06d8554ea6380940ec79",
            [TestLabels] = "bb300cfdad3c16e7a12a480ee83cd310",
        });

    /// <summary><c>ROOT/MNIST/raw</c> (torchvision's layout).</summary>
    public string RawDir(string root) => Path.Combine(root, Folder, "raw");

    /// <summary>The file for <paramref name="name"/>: <c>name.gz</c> when present, else the raw <c>name</c>; null when neither exists.</summary>
    public string? Find(string root, string name)
    {
        // A folder in a file's place is returned too: reading it then says so, instead of "file not found".
        var gz = Path.Combine(RawDir(root), name + ".gz");
        if (Path.Exists(gz)) return gz;
        var raw = Path.Combine(RawDir(root), name);
        return Path.Exists(raw) ? raw : null;
    }

    string IDatasetFiles.Folder(string root) => RawDir(root);

    string IDatasetFiles.Title => Folder;

    public bool Complete(string root) => All.All(name => Find(root, name) is not null);

    /// <summary>The four <c>.gz</c> files into <c>ROOT/&lt;Folder&gt;/raw/</c>, each from every mirror in order.</summary>
    public IReadOnlyList<RemoteFile> Downloads =>
        All.Select(name => new RemoteFile(Path.Combine(Folder, "raw", name + ".gz"), Md5[name], Mirrors.Select(m => m + name + ".gz").ToList())).ToList();

    /// <summary>A file is needed when neither its <c>.gz</c> nor its raw form is there.</summary>
    public bool Needs(string root, RemoteFile file) => Find(root, Path.GetFileNameWithoutExtension(file.Target)) is null;

    public string ByHand(string root) =>
        $"copy the files into {RawDir(root)} by hand (torchvision's layout)" +
        (PackagedSample && PackagedFiles.SampleRoot is not null ? $", or use the packaged sample (data.root: {PackagedFiles.Sample}; `{ToolCommand.Name} train` with no config uses it)" : "");

    /// <summary>Checks each file: present, md5 (for torchvision's originals) and readable IDX. Returns one line per file.</summary>
    public List<(string File, bool Ok, string Detail)> Verify(string root)
    {
        var result = new List<(string, bool, string)>();
        foreach (var name in All)
        {
            var path = Find(root, name);
            if (path is null) { result.Add((Path.Combine(RawDir(root), name + ".gz"), false, "missing")); continue; }
            try
            {
                string count = name.Contains("images") ? $"{Idx.ReadImages(path).Count} images" : $"{Idx.ReadLabels(path).Length} labels";
                string md5 = path.EndsWith(".gz") ? DatasetFetcher.Md5Of(path) : "";
                string origin = md5 == Md5[name] ? "md5 matches torchvision's" : path.EndsWith(".gz") ? "md5 differs from torchvision's (not the original file: a sample or a re-compression)" : "raw file";
                result.Add((path, true, $"{count}, {origin}"));
            }
            catch (DataException e) { result.Add((path, false, e.Message)); }
        }
        return result;
    }

    /// <summary>Reads a split's IDX images and labels; the images must be <paramref name="height"/>×<paramref name="width"/>.</summary>
    public RawSplit Read(string root, bool train, int channels, int height, int width)
    {
        var imagesName = train ? TrainImages : TestImages;
        var labelsName = train ? TrainLabels : TestLabels;
        var imagesPath = Find(root, imagesName) ?? throw Missing(root, imagesName);
        var labelsPath = Find(root, labelsName) ?? throw Missing(root, labelsName);
        var images = Idx.ReadImages(imagesPath);
        var labels = Idx.ReadLabels(labelsPath);
        if (images.Count != labels.Length)
            throw new DataException($"{imagesPath}: {images.Count} images but {labelsPath} has {labels.Length} labels");
        if (images.Rows != height || images.Cols != width)
            throw new DataException($"{imagesPath}: images are {images.Rows}×{images.Cols}; {Dataset} images are {height}×{width}");
        return new RawSplit(images.Pixels, images.Count, labels, imagesPath, labelsPath);
    }

    DataException Missing(string root, string name) =>
        new($"{Path.Combine(RawDir(root), name)}(.gz): file not found; put torchvision's {Folder} files in " +
            $"{RawDir(root)}, set data.download: true, or run `{ToolCommand.Name} data fetch`");
}
