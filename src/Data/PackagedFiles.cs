namespace ResnetMnist.Data;

/// <summary>
/// What the tool package carries beside its dll (tool/ResnetMnist.Tool.csproj content items), in the repository's
/// layout: <c>configs/quickstart.yaml</c> and the embedded MNIST sample <c>data/MNIST/raw/*.gz</c> (9,000 train /
/// 1,000 test real digits). <c>train</c> without a config trains the quickstart on it.
/// </summary>
public static class PackagedFiles
{
    /// <summary>The folder the files were installed into (the tool's own folder; overridable for tests).</summary>
    public static string BaseDirectory { get; set; } = AppContext.BaseDirectory;

    /// <summary>The packaged <c>configs/quickstart.yaml</c>, or null where it is absent.</summary>
    public static string? Quickstart => File.Exists(Path.Combine(BaseDirectory, "configs", "quickstart.yaml")) ? Path.Combine(BaseDirectory, "configs", "quickstart.yaml") : null;

    /// <summary>The packaged sample's data.root (holding <c>MNIST/raw/</c>), or null where any of its four files is absent.</summary>
    public static string? SampleRoot
    {
        get
        {
            var root = Path.Combine(BaseDirectory, "data");
            return HoldsMnist(root) ? root : null;
        }
    }

    /// <summary>Whether <paramref name="root"/> holds all four MNIST files in torchvision's layout (IDX, <c>.gz</c> or raw).</summary>
    public static bool HoldsMnist(string root)
    {
        return MnistFiles.All.All(name => MnistFiles.Mnist.Find(root, name) is string f && File.Exists(f));
    }

    /// <summary>
    /// The <c>data.root</c> value that names the packaged MNIST sample (resolved, and refused for other datasets, by
    /// the config loader).
    /// </summary>
    public const string Sample = "sample";

    /// <summary>
    /// <c>data.root</c> for MNIST where no config file names one, as a <c>--set</c> override: <c>./data</c> when it
    /// holds MNIST, else the packaged sample.
    /// </summary>
    public static string DataRootOverride() => HoldsMnist(Path.GetFullPath("data")) ? LocalDataRoot() : $"data.root={Sample}";

    /// <summary><c>./data</c> (the current folder's) as a <c>--set data.root</c> override.</summary>
    public static string LocalDataRoot() => $"data.root='{Path.GetFullPath("data").Replace("'", "''")}'";
}
