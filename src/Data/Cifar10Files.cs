namespace ResnetMnist.Data;

/// <summary>
/// torchvision's CIFAR-10 files (<c>torchvision.datasets.CIFAR10</c>: <c>base_folder</c>, <c>url</c>, <c>filename</c>,
/// <c>tgz_md5</c>, <c>train_list</c>, <c>test_list</c>, <c>meta</c>), with their md5 sums as torchvision lists them.
/// </summary>
public sealed record Cifar10Files(string Dataset, string Folder, string Url, string ArchiveName, string ArchiveMd5,
    IReadOnlyList<(string Name, string Md5)> TrainList, IReadOnlyList<(string Name, string Md5)> TestList,
    string MetaName, string MetaKey, string MetaMd5)
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
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(f));
    }
}
