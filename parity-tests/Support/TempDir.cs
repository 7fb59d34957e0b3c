using NUnit.Framework;

namespace ResnetMnist.ParityTests;

/// <summary>
/// The one home of the tests' temporary folders: every folder is made under <see cref="Root"/>, which is removed when
/// the test run ends. <see cref="New"/> gives a folder that lives until then; a <see cref="TempDir"/> is removed on dispose.
/// </summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = New("tmp");
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }

    /// <summary>This test run's folder under the system temp folder.</summary>
    public static string Root { get; } = Directory.CreateDirectory(
        System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"resnet-mnist-tests-{Environment.ProcessId}")).FullName;

    /// <summary>A fresh, empty folder named after <paramref name="name"/> (kept until the end of the test run).</summary>
    public static string New(string name)
    {
        var dir = System.IO.Path.Combine(Root, $"{name}-{Guid.NewGuid():N}"[..Math.Min(name.Length + 9, 60)]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>Removes <see cref="TempDir.Root"/> after the last test.</summary>
[SetUpFixture]
public sealed class TempRootCleanup
{
    [OneTimeTearDown]
    public void RemoveTempFiles()
    {
        try { Directory.Delete(TempDir.Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
