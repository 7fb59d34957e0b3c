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

/// <summary>
/// One file a dataset is downloaded as: its mirrors (tried in order), its md5, where it goes under <c>data.root</c>
/// and, for a <c>.tar.gz</c>, the one folder it unpacks into (torchvision's <c>base_folder</c>).
/// </summary>
/// <param name="Target">Path under <c>data.root</c> (<c>MNIST/raw/train-images-idx3-ubyte.gz</c>, <c>cifar-10-python.tar.gz</c>).</param>
/// <param name="Urls">Full URLs, tried in this order until one gives a file whose md5 is <paramref name="Md5"/>.</param>
/// <param name="ExtractsTo">For a tar.gz: the folder under <c>data.root</c> it holds (only that folder's files are accepted); null: kept as downloaded.</param>
public sealed record RemoteFile(string Target, string Md5, IReadOnlyList<string> Urls, string? ExtractsTo = null);

/// <summary>A dataset's files in torchvision's layout: which to download, how to read them, how to check them.</summary>
public interface IDatasetFiles
{
    /// <summary>torchvision's name for the file set (<c>MNIST</c>, <c>FashionMNIST</c>, <c>CIFAR-10</c>).</summary>
    string Title { get; }
    /// <summary>The folder the files live in under <paramref name="root"/>.</summary>
    string Folder(string root);
    /// <summary>The files <see cref="DatasetFetcher"/> downloads, in order.</summary>
    IReadOnlyList<RemoteFile> Downloads { get; }
    /// <summary>Whether <paramref name="file"/> must be fetched: what it provides is not in <paramref name="root"/> yet.</summary>
    bool Needs(string root, RemoteFile file);
    /// <summary>What to do when no mirror gave a file (ends the one-line error).</summary>
    string ByHand(string root);
    /// <summary>True when every file is present.</summary>
    bool Complete(string root);
    /// <summary>Reads a split; <see cref="DataException"/> naming the file when it is missing or malformed.</summary>
    RawSplit Read(string root, bool train, int channels, int height, int width);
    /// <summary>One line per file: present, checksum, readable.</summary>
    List<(string File, bool Ok, string Detail)> Verify(string root);
    /// <summary>
    /// Reads, with the tool's own restricted readers, every file of <paramref name="root"/> that torchvision reads with
    /// <c>pickle.load</c> (which would run what a file asks for); a <see cref="DataException"/> names the first bad one.
    /// Run before the reference program is handed the folder. Nothing to do for files that are not pickles.
    /// </summary>
    void CheckPickles(string root) { }
}

/// <summary>
/// A training-time augmentation of uint8 N×C×H×W batches, drawing from the global generator exactly as torchvision's
/// transforms draw inside <c>Dataset.__getitem__</c> (sample by sample, in the order the DataLoader fetches them).
/// </summary>
public interface IAugmentation
{
    /// <summary>Draws for every sample of <paramref name="batch"/>, in order, and returns the augmented batch (uint8, same shape).</summary>
    TorchSharp.torch.Tensor Apply(TorchSharp.torch.Tensor batch);
}

/// <summary>
/// A dataset as torchvision provides it (like <c>torchvision.datasets.MNIST</c>): its files and reader, image shape,
/// classes, the normalisation constants of <c>data.normalize</c> and the augmentation of <c>data.augment</c>.
/// </summary>
/// <param name="ClassNames">The name of each label, in label order (torchvision's <c>classes</c>, CIFAR-10's <c>label_names</c>).</param>
/// <param name="Mean">Per-channel mean of <c>ToTensor</c> pixels (0..1), subtracted with <c>data.normalize</c>.</param>
/// <param name="Std">Per-channel standard deviation, divided by with <c>data.normalize</c>.</param>
/// <param name="Augmentation">What <c>data.augment: true</c> applies to training batches; null: the dataset has none and the key is refused.</param>
public sealed record DatasetSpec(string Name, int Channels, int Height, int Width, IReadOnlyList<string> ClassNames, double[] Mean, double[] Std,
    IDatasetFiles Files, IAugmentation? Augmentation = null)
{
    /// <summary>Number of classes (labels 0..NumClasses-1).</summary>
    public int NumClasses => ClassNames.Count;

    /// <summary>The config name (what <c>data.dataset</c> is written as).</summary>
    public override string ToString() => Name;
}

/// <summary>The datasets this library reads (the <c>data.dataset</c> key): one entry each.</summary>
public static class DatasetSpecs
{
    /// <summary>MNIST, classes named by their digit; mean and std are the usual <c>Normalize((0.1307,), (0.3081,))</c>.</summary>
    public static readonly DatasetSpec Mnist = new("mnist", 1, 28, 28, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], [0.1307], [0.3081], MnistFiles.Mnist);

    /// <summary>Fashion-MNIST, same format as MNIST, torchvision's class names; mean and std of its training images.</summary>
    public static readonly DatasetSpec FashionMnist = new("fashion-mnist", 1, 28, 28,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"], [0.2860], [0.3530], MnistFiles.FashionMnist);

    /// <summary>
    /// CIFAR-10 (torchvision's <c>cifar-10-batches-py</c>), the label names of its <c>batches.meta</c>; mean and std of
    /// its training images, per channel; <c>RandomCrop(32, padding=4)</c> + <c>RandomHorizontalFlip()</c> with <c>data.augment</c>.
    /// </summary>
    public static readonly DatasetSpec Cifar10 = new("cifar10", 3, 32, 32,
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"], [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616],
        CifarFiles.Cifar10, new CifarAugment());

    /// <summary>
    /// CIFAR-100 (torchvision's <c>cifar-100-python</c>, <c>fine_labels</c>), the <c>fine_label_names</c> of its
    /// <c>meta</c>; the per-channel mean and std of its training images commonly used with it; CIFAR-10's augmentation.
    /// </summary>
    public static readonly DatasetSpec Cifar100 = new("cifar100", 3, 32, 32, CifarFiles.Cifar100FineLabelNames,
        [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762], CifarFiles.Cifar100, new CifarAugment());

    /// <summary>
    /// The user's own images in torchvision's classification layout (<c>ROOT/train/&lt;class&gt;/…</c>,
    /// <c>ROOT/val/&lt;class&gt;/…</c>): its classes come from the folder and its image size from <c>data.image_size</c>
    /// (<see cref="Images.ImageFolderFiles.For"/>); mean and std are ImageNet's, as torchvision's pretrained weights use;
    /// <c>RandomResizedCrop(image_size)</c> + <c>RandomHorizontalFlip()</c> with <c>data.augment</c>, applied as the files are decoded.
    /// </summary>
    public static readonly DatasetSpec ImageFolder = new("imagefolder", 3, 224, 224, [], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
        Images.ImageFolderFiles.Instance, Images.ResizedCropFlip.Instance);

    public static readonly IReadOnlyList<DatasetSpec> All = [Mnist, FashionMnist, Cifar10, Cifar100, ImageFolder];

    /// <summary>Names of <see cref="All"/>: the allowed <c>data.dataset</c> values.</summary>
    public static IReadOnlyList<string> Names => All.Select(d => d.Name).ToList();

    /// <summary>The spec named <paramref name="name"/>; <see cref="ConfigException"/> naming the allowed ones otherwise.</summary>
    public static DatasetSpec Get(string name) => All.FirstOrDefault(d => d.Name == name)
        ?? throw new ConfigException($"data.dataset: '{name}' is not allowed; allowed: {string.Join(", ", Names)}");
}
