using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests.Native;

/// <summary>
/// TorchSharp 0.107's libLibTorchSharp.so needs GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks; the loader
/// loads a copy with that need marked weak. Tests: the patch itself on a copy, and a fresh process that
/// initialises torch through the tool.
/// </summary>
[TestFixture, Category("Native")]
public sealed class NativeLoaderTests
{
    static string StockBridge()
    {
        var dir = NativeLoader.FindNativeDir();
        Assert.That(dir, Is.Not.Null, "libLibTorchSharp.so not found beside TorchSharp.dll (restore the TorchSharp and libtorch-cpu-linux-x64 packages)");
        return Path.Combine(dir!, "libLibTorchSharp.so");
    }

    [Test]
    public void StockBridgeNeedsGlibcxx3432NonWeak()
    {
        var needs = ElfVersionNeeds.Read(File.ReadAllBytes(StockBridge()));
        var need = needs.Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.That(need.Library, Is.EqualTo("libstdc++.so.6"));
        Assert.That(need.IsWeak, Is.False);
    }

    [Test]
    public void WeakenChangesOnlyThatFlagsField()
    {
        var stock = File.ReadAllBytes(StockBridge());
        var patched = ElfVersionNeeds.Weaken(stock, NativeLoader.MarkerVersions, out int changed);
        Assert.That(changed, Is.EqualTo(1));
        var diffs = Enumerable.Range(0, stock.Length).Where(i => stock[i] != patched[i]).ToList();
        var need = ElfVersionNeeds.Read(stock).Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.That(diffs, Is.EqualTo(new[] { (int)need.FlagsOffset }), "exactly the low byte of vna_flags changes");
        var after = ElfVersionNeeds.Read(patched);
        Assert.That(after.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak, Is.True);
        Assert.That(after.Where(n => n.Version != "GLIBCXX_3.4.32").All(n => !n.IsWeak), Is.True, "no other need is weakened");
        Assert.That(ElfVersionNeeds.Weaken(patched, NativeLoader.MarkerVersions, out int again), Is.EqualTo(patched));
        Assert.That(again, Is.EqualTo(0), "patching is idempotent");
    }

    [Test]
    public void PatchedCopyIsCachedAndStable()
    {
        var a = NativeLoader.PatchedCopy(StockBridge());
        var b = NativeLoader.PatchedCopy(StockBridge());
        Assert.That(a, Is.EqualTo(b));
        Assert.That(ElfVersionNeeds.Read(File.ReadAllBytes(a)).Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak, Is.True);
    }

    [Test]
    public void NotAnElfFileIsRejected() =>
        Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.Read(new byte[100]));

    [Test]
    public void FreshProcessInitialisesTorch()
    {
        var (code, stdout, stderr) = Tool.Run(TempDir.New("info"), ["info"]);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("check: ones(2,2).sum() = 4"));
        bool systemHas3432 = File.Exists("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            && System.Text.Encoding.ASCII.GetString(File.ReadAllBytes("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")).Contains("GLIBCXX_3.4.32");
        TestContext.Out.WriteLine(stdout);
        Assert.That(stdout, Does.Contain(systemHas3432 ? "native bridge: stock" : "native bridge: patched:"));
    }
}
