namespace ResnetMnist.ParityTests;

/// <summary>Paths inside the repository, found from the test assembly's folder.</summary>
public static class Repo
{
    /// <summary>The repository root (the folder holding Parity.sln).</summary>
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Parity.sln"))) return dir.FullName;
        throw new InvalidOperationException($"Parity.sln not found above {AppContext.BaseDirectory}");
    }
}
