using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Parity;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// The parity check users run on their own configs (<c>dotnet resnet-mnist parity</c>): in-process against the
/// reference PyTorch program, and the command's exit-code contract.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ParityCommandTests
{
    const string Config = "train-sgd-nesterov-wd-cosine-float64";

    /// <summary>
    /// SGD + Nesterov + weight decay + cosine schedule, float64, 12 steps (so the epoch end after step 10 — the
    /// reshuffle, the evaluation's generator draw and the scheduler's epoch step — is inside the comparison).
    /// The bounds are the check's own float64 bounds (<see cref="ParityCheck.Float64"/>, measured ~1e-13 and below);
    /// the reference's losses and learning rates must be exactly those the reference program writes in its
    /// steps.csv for the same config (reference/snapshots/&lt;kernel set&gt;/train/), i.e. the dump mode trains as the program does.
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void InProcessCheckPassesAndMatchesTheReferenceProgramsOwnRun()
    {
        Python.RequireTorch();
        const int steps = 12;
        var cfg = ConfigLoader.Load(Repo.Path("reference", "configs", Config + ".yaml"));
        var reference = ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), Python.Exe);
        using var tmp = new TempDir();
        var report = ParityCheck.Run(cfg, steps, DtypeKind.Float64, reference, Path.Combine(tmp.Path, "reference"));
        ParityFiles.Write(report, tmp.Path, Config);
        TestContext.Out.WriteLine(File.ReadAllText(Path.Combine(tmp.Path, "parity.md")));

        Assert.That(report.Failures, Is.Empty);
        Assert.That(report.Passed, Is.True);
        Assert.That(report.Steps, Is.EqualTo(steps));
        Assert.That(report.WorstRelativeLossDifference, Is.LessThanOrEqualTo(1e-9));
        Assert.That(report.InitTensorsDiffering, Is.Zero);
        Assert.That(report.Layers.Keys, Is.EquivalentTo(ResnetMnist.Model.ResNet.LayerNames));

        var programSteps = RunDirectory.ReadSteps(Snapshot.PathOf($"train/{Config}/steps.csv"));
        Assert.That(report.ReferenceLosses, Is.EqualTo(programSteps.Take(steps).Select(s => s.Loss).ToList()),
            "the dump mode's losses are the program's own");
        Assert.That(report.ReferenceLrs, Is.EqualTo(programSteps.Take(steps).Select(s => s.Lr).ToList()),
            "the dump mode's learning rates are the program's own");
        Assert.That(report.ReferenceLrs[steps - 1], Is.LessThan(report.ReferenceLrs[0]), "the cosine schedule moved the lr at the epoch end");

        var written = ParityFiles.Read(Path.Combine(tmp.Path, "parity.json"));
        Assert.That(written.Passed, Is.True);
        Assert.That(written.ToolLosses, Is.EqualTo(report.ToolLosses));
        Assert.That(new FileInfo(Path.Combine(tmp.Path, "parity.png")).Length, Is.GreaterThan(1000));
    }

    [Test]
    public void ExitCode2AndOneErrorLineWithoutPython()
    {
        using var tmp = new TempDir();
        var (code, _, err) = Tool.Run(tmp.Path, ["parity", Repo.Path("reference", "configs", Config + ".yaml"),
            "--python", "/nonexistent/python3", "--out", tmp.Path]);
        Assert.That(code, Is.EqualTo(2), err);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), err);
        Assert.That(lines[0], Does.StartWith("error: no PyTorch found"));
        Assert.That(lines[0], Does.Contain(Python.InstallCommand).And.Contain("--python"));
        Assert.That(File.Exists(Path.Combine(tmp.Path, "parity.json")), Is.False);
    }
}
