using System.Security.Cryptography;
using NUnit.Framework;
using ResnetMnist.Weights;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>
/// An installed tool fetches ML.NET's ResNet-18 package from the user's NuGet sources: here a local folder feed named
/// by a nuget.config (so no network is needed), read by NuGet's own client libraries and extracted into the
/// configured global packages folder; a package whose bytes differ from the pinned SHA-512 is refused.
/// </summary>
[TestFixture, Category("Weights")]
public sealed class NuGetFetchTests
{
    static string CachedNupkg()
    {
        var dir = MlnetImporter.FindPackageDir();
        return Directory.GetFiles(dir, "*.nupkg").Single();
    }

    static void Config(string dir, string feed) => File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources><clear /><add key="local" value="{feed}" /></packageSources>
          <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "packages")}" /></config>
        </configuration>
        """);

    [Test]
    public void The_package_is_fetched_from_the_configured_source_into_the_configured_folder()
    {
        var dir = TempDir.New("nuget-fetch");
        var feed = Directory.CreateDirectory(Path.Combine(dir, "feed")).FullName;
        File.Copy(CachedNupkg(), Path.Combine(feed, Path.GetFileName(CachedNupkg())));
        Config(dir, feed);
        var reports = new List<long>();
        var folder = NuGetFetch.Fetch(MlnetImporter.PackageId, MlnetImporter.PackageVersion, MlnetImporter.PackageSha512, dir,
            new SyncProgress(p => reports.Add(p.done)));
        Assert.That(folder, Does.StartWith(Path.Combine(dir, "packages")));
        var onnx = Path.Combine(folder, "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
        var original = Path.Combine(MlnetImporter.FindPackageDir(), "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
        Assert.That(SHA256.HashData(File.ReadAllBytes(onnx)), Is.EqualTo(SHA256.HashData(File.ReadAllBytes(original))));
        Assert.That(reports, Is.Not.Empty.And.Ordered, "download progress is reported");
        Assert.That(reports[^1], Is.EqualTo(new FileInfo(CachedNupkg()).Length));
    }

    [Test]
    public void A_package_that_differs_from_the_pinned_one_is_refused_and_nothing_is_extracted()
    {
        var dir = TempDir.New("nuget-tampered");
        var feed = Directory.CreateDirectory(Path.Combine(dir, "feed")).FullName;
        var bytes = File.ReadAllBytes(CachedNupkg());
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(Path.Combine(feed, Path.GetFileName(CachedNupkg())), bytes);
        Config(dir, feed);
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
