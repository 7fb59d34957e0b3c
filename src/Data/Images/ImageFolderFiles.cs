namespace ResnetMnist.Data.Images;

/// <summary>
/// The files of <c>data.dataset: imagefolder</c>: the user's own images under <c>ROOT/train/&lt;class&gt;/</c> and
/// <c>ROOT/val/&lt;class&gt;/</c> (torchvision's <c>references/classification</c> layout). They are indexed by
/// <see cref="ImageFolder"/> and decoded per batch (<see cref="ImageSplit.FromFolder"/>), never read whole; there is
/// nothing to download.
/// </summary>
public sealed class ImageFolderFiles : IDatasetFiles
{
    public static readonly ImageFolderFiles Instance = new();

    /// <summary>The split folders under the root, as torchvision's reference scripts name them.</summary>
    public const string TrainFolder = "train", ValFolder = "val";

    public string Title => "ImageFolder";
    public string Folder(string root) => root;

    /// <summary>The folder of a split.</summary>
    public static string SplitFolder(string root, bool train) => Path.Combine(root, train ? TrainFolder : ValFolder);

    public bool Complete(string root) => Directory.Exists(SplitFolder(root, true)) && Directory.Exists(SplitFolder(root, false));

    /// <summary>Not used: image folders are decoded per batch (<see cref="ImageSplit.FromFolder"/>), not read whole.</summary>
    public RawSplit Read(string root, bool train, int channels, int height, int width) =>
        throw new InvalidOperationException("an image folder is decoded per batch (ImageSplit.FromFolder), not read whole");

    /// <summary>Nothing: the images are the user's own.</summary>
    public IReadOnlyList<RemoteFile> Downloads => [];

    public bool Needs(string root, RemoteFile file) => false;

    public string ByHand(string root) =>
        $"data.dataset imagefolder holds your own images, there is nothing to download; put them in {Path.Combine(root, TrainFolder, "<class>")}/ and {Path.Combine(root, ValFolder, "<class>")}/";

    public List<(string File, bool Ok, string Detail)> Verify(string root)
    {
        var lines = new List<(string, bool, string)>();
        IReadOnlyList<string>? classes = null;
        foreach (var train in new[] { true, false })
        {
            var dir = SplitFolder(root, train);
            try
            {
                var index = ImageFolder.Index(dir, classes);
                classes ??= index.Classes;
                lines.Add((dir, true, $"{index.Files.Count} images in {index.Classes.Count} classes"));
            }
            catch (DataException e) { lines.Add((dir, false, e.Message)); }
        }
        return lines;
    }

    /// <summary>
    /// imagefolder's spec for a run: <see cref="DatasetSpecs.ImageFolder"/> with the crop size as its image size and the
    /// training split's class names (numbered when the folder is absent, e.g. predicting elsewhere).
    /// </summary>
    public static DatasetSpec For(string root, int imageSize, int numClasses)
    {
        var train = SplitFolder(root, true);
        IReadOnlyList<string> names = Directory.Exists(train) ? ImageFolder.FindClasses(train)
            : Enumerable.Range(0, numClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        return DatasetSpecs.ImageFolder with { Height = imageSize, Width = imageSize, ClassNames = names };
    }
}
