using System.Security.Cryptography;
using NUnit.Framework;
using ResnetMnist.Weights;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>
/// An installed tool fetches ML.NET's ResNet-18 package from the user's NuGet sources: here a local folder feed named
/// by a nuget.config (so no network is needed), read by NuGet's own client libraries and extracted into the global
/// packages folder; a package whose bytes differ from the pinned SHA-512 is refused. The lookup order of
/// <see cref="MlnetImporter.FindPackageDir"/> (docs/pretrained.md) is checked with <c>NUGET_PACKAGES</c> set and unset.
/// Every test sets <c>HOME</c>, <c>XDG_CACHE_HOME</c> and <c>NUGET_PACKAGES</c> to its own folders, so the user's
/// caches neither help nor hinder.
/// </summary>
[TestFixture, Category("Weights"), NonParallelizable]
public sealed class NuGetFetchTests
{
    const string OnnxInPackage = "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    /// <summary>This test's own HOME, XDG_CACHE_HOME and NUGET_PACKAGES (null: unset); HOME's .nuget/packages is empty.</summary>
    static IDisposable OwnEnvironment(string dir, string? nugetPackages) => TestEnvironment.Set(
        ("HOME", Directory.CreateDirectory(Path.Combine(dir, "home")).FullName),
        ("XDG_CACHE_HOME", Path.Combine(dir, "home", ".cache")),
        ("NUGET_PACKAGES", nugetPackages));

    /// <summary>The package as the build restored it (the folder recorded at build time: HOME and NUGET_PACKAGES are the test's own).</summary>
    static string BuiltPackageDir()
    {
        using var _ = OwnEnvironment(TempDir.New("nuget-built"), null);
        return MlnetImporter.FindPackageDir(TempDir.New("nuget-noconfig"));
    }

    static string CachedNupkg() => Directory.GetFiles(BuiltPackageDir(), "*.nupkg").Single();

    static void Config(string dir, string feed) => File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources><clear /><add key="local" value="{feed}" /></packageSources>
          <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "packages")}" /></config>
        </configuration>
        """);

    /// <summary>A stand-in package folder under <paramref name="root"/> (the lookup only checks that ResNet18.onnx exists).</summary>
    static string FakePackage(string root)
    {
        var dir = Path.Combine(root, MlnetImporter.PackageId.ToLowerInvariant(), MlnetImporter.PackageVersion);
        var onnx = Path.Combine([dir, .. OnnxInPackage.Split('/')]);
        Directory.CreateDirectory(Path.GetDirectoryName(onnx)!);
        File.WriteAllBytes(onnx, []);
        return dir;
    }

    [TestCase(false, TestName = "Fetch_without_NUGET_PACKAGES_extracts_into_the_nuget_config_globalPackagesFolder")]
    [TestCase(true, TestName = "Fetch_with_NUGET_PACKAGES_extracts_there_as_dotnet_restore_does")]
    public void The_package_is_fetched_from_the_configured_source_into_the_global_packages_folder(bool nugetPackagesSet)
    {
        var nupkg = CachedNupkg();
        var original = Path.Combine([BuiltPackageDir(), .. OnnxInPackage.Split('/')]);
        var dir = TempDir.New("nuget-fetch");
        var feed = Directory.CreateDirectory(Path.Combine(dir, "feed")).FullName;
        File.Copy(nupkg, Path.Combine(feed, Path.GetFileName(nupkg)));
        Config(dir, feed);
        var env = Path.Combine(dir, "env-packages");
        var expected = nugetPackagesSet ? env : Path.Combine(dir, "packages");
        using var _ = OwnEnvironment(dir, nugetPackagesSet ? env : null);
        var reports = new List<long>();
        var folder = NuGetFetch.Fetch(MlnetImporter.PackageId, MlnetImporter.PackageVersion, MlnetImporter.PackageSha512, dir,
            new SyncProgress(p => reports.Add(p.done)));
        Assert.That(folder, Does.StartWith(expected));
        var onnx = Path.Combine([folder, .. OnnxInPackage.Split('/')]);
        Assert.That(SHA256.HashData(File.ReadAllBytes(onnx)), Is.EqualTo(SHA256.HashData(File.ReadAllBytes(original))));
        Assert.That(reports, Is.Not.Empty.And.Ordered, "download progress is reported");
        Assert.That(reports[^1], Is.EqualTo(new FileInfo(nupkg).Length));
        Assert.That(MlnetImporter.FindPackageDir(dir), Is.EqualTo(folder), "the next lookup from the same folder finds the fetched package");
    }

    [Test]
    public void Lookup_takes_NUGET_PACKAGES_first_then_the_nuget_config_folder_then_home_then_the_build_time_folder()
    {
        var dir = TempDir.New("nuget-lookup");
        var env = FakePackage(Path.Combine(dir, "env-packages"));
        var configured = FakePackage(Path.Combine(dir, "packages"));
        Config(dir, Path.Combine(dir, "feed"));
        var noConfig = TempDir.New("nuget-noconfig"); // not under dir: nuget.config is looked for in every parent folder
        string home, built;
        using (OwnEnvironment(dir, Path.Combine(dir, "env-packages")))
        {
            home = FakePackage(Path.Combine(dir, "home", ".nuget", "packages"));
            Assert.That(MlnetImporter.FindPackageDir(dir), Is.EqualTo(env), "NUGET_PACKAGES set: it comes first, over nuget.config");
            Assert.That(MlnetImporter.FindPackageDir(noConfig), Is.EqualTo(env), "NUGET_PACKAGES set, no nuget.config");
        }
        using (OwnEnvironment(dir, null))
        {
            Assert.That(MlnetImporter.FindPackageDir(dir), Is.EqualTo(configured), "NUGET_PACKAGES unset: nuget.config's globalPackagesFolder");
            Assert.That(MlnetImporter.FindPackageDir(noConfig), Is.EqualTo(home), "NUGET_PACKAGES unset, no nuget.config: ~/.nuget/packages");
            Directory.Delete(Path.Combine(dir, "home", ".nuget"), recursive: true);
            built = MlnetImporter.FindPackageDir(noConfig);
            Assert.That(built, Does.Not.StartWith(dir), "nothing in the test's folders: the folder recorded at build time");
            Assert.That(File.Exists(Path.Combine([built, .. OnnxInPackage.Split('/')])), Is.True);
        }
        using (OwnEnvironment(dir, Path.Combine(dir, "empty-packages")))
            Assert.That(MlnetImporter.FindPackageDir(dir), Is.EqualTo(built), "NUGET_PACKAGES set (it replaces nuget.config's folder, as for dotnet restore) but without the package: the build-time folder");
    }

    [Test]
    public void Without_NUGET_PACKAGES_or_a_configured_folder_each_lookup_reads_HOME_as_it_is_then()
    {
        // NuGet's own resolution keeps the first home folder it saw for the life of the process; a library called by a
        // long-lived host (or this suite) must follow HOME as it is at the call
        var noConfig = TempDir.New("nuget-noconfig");
        foreach (var name in new[] { "first", "second" })
        {
            var dir = TempDir.New("nuget-home-" + name);
            using var _ = OwnEnvironment(dir, null);
            var home = FakePackage(Path.Combine(dir, "home", ".nuget", "packages"));
            Assert.That(MlnetImporter.FindPackageDir(noConfig), Is.EqualTo(home), $"{name} HOME: its ~/.nuget/packages");
        }
    }

    [Test]
    public void A_package_that_differs_from_the_pinned_one_is_refused_and_nothing_is_extracted()
    {
        var nupkg = CachedNupkg();
        var dir = TempDir.New("nuget-tampered");
        var feed = Directory.CreateDirectory(Path.Combine(dir, "feed")).FullName;
        var bytes = File.ReadAllBytes(nupkg);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(Path.Combine(feed, Path.GetFileName(nupkg)), bytes);
        Config(dir, feed);
        using var _ = OwnEnvironment(dir, null);
        var e = Assert.Throws<WeightsFileException>(() =>
            NuGetFetch.Fetch(MlnetImporter.PackageId, MlnetImporter.PackageVersion, MlnetImporter.PackageSha512, dir))!;
        Assert.That(e.Message, Does.Contain("differs from the pinned").And.Contain("could not be fetched"));
        Assert.That(Directory.Exists(Path.Combine(dir, "packages", MlnetImporter.PackageId.ToLowerInvariant())), Is.False);
    }

    [Test]
    public void A_source_that_accepts_connections_and_never_answers_is_given_up()
    {
        var dir = TempDir.New("nuget-silent");
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var held = new System.Collections.Concurrent.ConcurrentBag<System.Net.Sockets.TcpClient>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try { while (true) held.Add(await listener.AcceptTcpClientAsync(stop.Token)); } // accept, read nothing, answer nothing
            catch (OperationCanceledException) { }
        });
        Config(dir, $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}/v3/index.json");
        var limits = new NuGetFetch.FetchLimits(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2), 256L << 20);
        try
        {
            var e = Assert.Throws<WeightsFileException>(() =>
                NuGetFetch.Fetch(MlnetImporter.PackageId, MlnetImporter.PackageVersion, MlnetImporter.PackageSha512, dir, limits: limits))!;
            Assert.That(e.Message, Does.Contain("the source did not start sending the package within 2 s").And.Contain("could not be fetched"));
            Assert.That(held, Is.Not.Empty, "the fetch reached the listener");
        }
        finally
        {
            stop.Cancel();
            listener.Stop();
            foreach (var c in held) c.Dispose();
        }
    }

    [Test]
    public void A_package_larger_than_the_cap_is_refused_while_it_streams()
    {
        var dir = TempDir.New("nuget-large");
        var feed = Directory.CreateDirectory(Path.Combine(dir, "feed")).FullName;
        File.Copy(CachedNupkg(), Path.Combine(feed, Path.GetFileName(CachedNupkg())));
        Config(dir, feed);
        var reports = new List<long>();
        var limits = NuGetFetch.FetchLimits.Default with { MaxPackageBytes = 1 << 20 };
        var e = Assert.Throws<WeightsFileException>(() => NuGetFetch.Fetch(MlnetImporter.PackageId, MlnetImporter.PackageVersion,
            MlnetImporter.PackageSha512, dir, new SyncProgress(p => reports.Add(p.done)), limits: limits))!;
        Assert.That(e.Message, Does.Contain("the package is larger than the 1 MiB allowed (refused)"));
        Assert.That(reports, Has.All.LessThanOrEqualTo(1 << 20), "nothing past the cap was taken in");
        Assert.That(Directory.Exists(Path.Combine(dir, "packages", MlnetImporter.PackageId.ToLowerInvariant())), Is.False);
    }

    sealed class SyncProgress(Action<(long done, long? total)> report) : IProgress<(long done, long? total)>
    {
        public void Report((long done, long? total) value) => report(value);
    }
}
