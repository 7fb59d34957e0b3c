using NUnit.Framework;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>A .pth whose pickle would run <c>posix.system</c> is refused everywhere and runs nothing.</summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class ForeignPickleTests
{
    /// <summary>A .pth whose pickle calls <c>posix.system("touch MARKER")</c> when unpickled (written byte by byte).</summary>
    static (string Pth, string Marker) Craft(string dir)
    {
        var pth = Path.Combine(dir, "evil.pth");
        var marker = Path.Combine(dir, "PWNED");
        CraftedFiles.Zip(pth, ("archive/data.pkl", CraftedFiles.CallPickle("posix", "system", "touch " + marker)), ("archive/version", "3\n"u8.ToArray()));
        return (pth, marker);
    }

    [Test]
    public void Is_refused_as_pretrained_weights_for_evaluate_and_for_inspect_without_running_anything()
    {
        var dir = TempDir.New("evil");
        var (pth, marker) = Craft(dir);
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());

        var train = Tool.Run(dir, ["train", cfg, "--out", Path.Combine(dir, "run"), "--set", $"model.pretrained={pth}"]);
        Tool.AssertOneErrorLine(train, 2, "evil.pth");
        Assert.That(train.Stderr, Does.Contain("posix.system"), "the refusal names the foreign global");
        Assert.That(Directory.Exists(Path.Combine(dir, "run")), Is.False);

        var evaluate = Tool.Run(dir, ["evaluate", pth, "--config", cfg]);
        Tool.AssertOneErrorLine(evaluate, 2, "evil.pth");

        var inspect = Tool.Run(dir, ["weights", "inspect", pth]);
        Tool.AssertOneErrorLine(inspect, 2, "evil.pth");

        Assert.That(File.Exists(marker), Is.False, "the pickle's payload ran");
    }
}
