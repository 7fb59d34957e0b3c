using System.Diagnostics;
using NUnit.Framework;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>A .pth whose pickle would run <c>posix.system</c> is refused everywhere and runs nothing.</summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class ForeignPickleTests
{
    const string Python = "/usr/bin/python3";

    static (string Pth, string Marker) Craft(string dir)
    {
        if (!File.Exists(Python)) Assert.Fail($"{Python} not found: it crafts the malicious .pth (apt-get install python3)");
        var pth = Path.Combine(dir, "evil.pth");
        var marker = Path.Combine(dir, "PWNED");
        var script = """
            import pickle, posix, sys, zipfile
            class Evil:
                def __reduce__(self):
                    return (posix.system, ("touch " + sys.argv[2],))
            with zipfile.ZipFile(sys.argv[1], "w") as z:
                z.writestr("archive/data.pkl", pickle.dumps({"conv1.weight": Evil()}, protocol=2))
                z.writestr("archive/version", "3\n")
            """;
        var psi = new ProcessStartInfo(Python, ["-c", script, pth, marker]) { RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), p.StandardError.ReadToEnd());
        Assert.That(File.Exists(marker), Is.False, "crafting must not run the payload");
        return (pth, marker);
    }

    [Test]
    public void Is_refused_as_pretrained_weights_for_evaluate_and_for_inspect_without_running_anything()
    {
        var dir = Tool.NewDir("evil");
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
