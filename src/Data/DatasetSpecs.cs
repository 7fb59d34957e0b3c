namespace ResnetMnist.Data;

/// <summary>One split as read from a dataset's files: images as bytes, N×C×H×W, and one label byte per image.</summary>
/// <param name="Source">The images file (named in messages and run logs).</param>
/// <param name="LabelsSource">The labels file (the first, where the labels come from several).</param>
/// <param name="LabelFiles">Where the labels come from several files: each file with the index of its first label, in order.</param>
public sealed record RawSplit(byte[] Pixels, int Count, byte[] Labels, string Source, string LabelsSource,
    IReadOnlyList<(int Start, string File)>? LabelFiles = null)
{
    /// <summary>The file label <paramref name="index"/> comes from, and its index there.</summary>
    public (string File, int Index) LabelOrigin(int index)
    {
        if (LabelFiles is null) return (LabelsSource, index);
        var (start, file) = LabelFiles.Last(f => f.Start <= index);
        return (file, index - start);
    }

    /// <summary>Every label lies in 0..<paramref name="numClasses"/>-1, or a <see cref="DataException"/> names the file and index of the first that does not.</summary>
    public void CheckLabels(int numClasses)
    {
        for (int i = 0; i < Count; i++)
            if (Labels[i] >= numClasses)
            {
                var (file, at) = LabelOrigin(i);
                throw new DataException($"{file}: label {Labels[i]} at index {at} is outside 0..{numClasses - 1} (model.num_classes: {numClasses})");
            }
    }
}

/// <summary>A dataset's files in torchvision's layout: find, read, download and verify them.</summary>
public interface IDatasetFiles
{
    /// <summary>torchvision's name for the file set (its folder: <c>MNIST</c>, <c>FashionMNIST</c>).</summary>
    string Title { get; }
    /// <summary>The folder the files live in under <paramref name="root"/>.</summary>
    string Folder(string root);
    /// <summary>True when every file is present.</summary>
    bool Complete(string root);
    /// <summary>Reads a split; <see cref="DataException"/> naming the file when it is missing or malformed.</summary>
    RawSplit Read(string root, bool train, int channels, int height, int width);
    /// <summary>Downloads the missing files (checksummed, temp file + rename).</summary>
    void Fetch(string root, IProgress<(string File, long Done, long? Total)>? progress = null, HttpClient? client = null, CancellationToken cancel = default);
    /// <summary>One line per file: present, checksum, readable.</summary>
    List<(string File, bool Ok, string Detail)> Verify(string root);
}

/// <summary>
/// A dataset as torchvision provides it (like <c>torchvision.datasets.MNIST</c>): its files and reader, image shape,
/// classes and the normalisation constants of <c>data.normalize</c>.
/// </summary>
/// <param name="ClassNames">The name of each label, in label order (torchvision's <c>classes</c>, CIFAR-10's <c>label_names</c>).</param>
/// <param name="Mean">Per-channel mean of <c>ToTensor</c> pixels (0..1), subtracted with <c>data.normalize</c>.</param>
/// <param name="Std">Per-channel standard deviation, divided by with <c>data.normalize</c>.</param>
public sealed record DatasetSpec(string Name, int Channels, int Height, int Width, IReadOnlyList<string> ClassNames, double[] Mean, double[] Std, IDatasetFiles Files)
{
    /// <summary>Number of classes (labels 0..NumClasses-1).</summary>
    public int NumClasses => ClassNames.Count;
}

/// <summary>The datasets this library reads (the <c>data.dataset</c> key).</summary>
public static class DatasetSpecs
{
    /// <summary>MNIST, classes named by their digit; mean and std are the usual <c>Normalize((0.1307,), (0.3081,))</c>.</summary>
    public static readonly DatasetSpec Mnist = new("mnist", 1, 28, 28, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], [0.1307], [0.3081], MnistFiles.Mnist);

    /// <summary>Fashion-MNIST, same format as MNIST, torchvision's class names; mean and std of its training images.</summary>
    public static readonly DatasetSpec FashionMnist = new("fashion-mnist", 1, 28, 28,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"], [0.2860], [0.3530], MnistFiles.FashionMnist);

    /// <summary>CIFAR-10 (torchvision's <c>cifar-10-batches-py</c>), the label names of its <c>batches.meta</c>; mean and std of its training images, per channel.</summary>
    public static readonly DatasetSpec Cifar10 = new("cifar10", 3, 32, 32,
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"], [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616], Cifar10Files.Cifar10);

    /// <summary>
    /// The user's own images in torchvision's classification layout (<c>ROOT/train/&lt;class&gt;/…</c>,
    /// <c>ROOT/val/&lt;class&gt;/…</c>): its classes come from the folder and its image size from <c>data.image_size</c>
    /// (<see cref="Images.ImageFolderFiles.For"/>); mean and std are ImageNet's, as torchvision's pretrained weights use.
    /// </summary>
    public static readonly DatasetSpec ImageFolder = new("imagefolder", 3, 224, 224, [], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], Images.ImageFolderFiles.Instance);

    public static readonly IReadOnlyList<DatasetSpec> All = [Mnist, FashionMnist, Cifar10, ImageFolder];

    /// <summary>Names of <see cref="All"/>: the allowed <c>data.dataset</c> values.</summary>
    public static IReadOnlyList<string> Names => All.Select(d => d.Name).ToList();

    /// <summary>The spec named <paramref name="name"/> (a validated config value).</summary>
    public static DatasetSpec Get(string name) => All.FirstOrDefault(d => d.Name == name)
        ?? throw new Config.ConfigException($"data.dataset: '{name}' is not allowed; allowed: {string.Join(", ", Names)}");
}
