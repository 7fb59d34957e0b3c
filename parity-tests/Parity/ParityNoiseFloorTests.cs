using NUnit.Framework;
using ResnetMnist.Parity;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// <c>parity --dtype float32</c> measures PyTorch's own spread for the config (the reference run again with another
/// thread count) and judges against it; asking for more steps than the config trains says so.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ParityNoiseFloorTests
{
    [Test, Category("NeedsPyTorch")]
    public void Float32ReportsPyTorchsNoiseFloorAndFewerStepsThanAsked()
    {
        Python.RequireTorch();
        var dir = TempDir.New("parity-noise");
        // 8 images in batches of 4, one epoch: the config trains 2 steps; 3 are asked for.
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 8, testLimit: 8, batch: 4));
        var outDir = Path.Combine(dir, "parity");
        var r = Tool.Run(dir, ["parity", cfg, "--dtype", "float32", "--steps", "3", "--python", Python.Exe, "--out", outDir]);
        TestContext.Out.WriteLine(r.ToString());
        Assert.That(r.ExitCode, Is.EqualTo(0).Or.EqualTo(1), r.ToString());
        Assert.That(r.Stdout, Does.Contain("note: compared 2 steps, not the 3 asked for"), r.ToString());
        Assert.That(r.Stdout, Does.Contain("PyTorch's own noise floor (1 vs 2 threads)"), r.ToString());

        var report = ParityFiles.Read(Path.Combine(outDir, "parity.json"));
        Assert.That((report.Steps, report.RequestedSteps), Is.EqualTo((2, 3)));
        Assert.That(report.NoiseFloor, Is.Not.Null);
        Assert.That(report.NoiseFloor!.LossDifferences, Has.Count.EqualTo(2));
        Assert.That(report.AllowedLossDifferences, Has.Count.EqualTo(2));
        Assert.That(report.FinalWeightsAllowed,
            Is.EqualTo(Math.Max(ParityCheck.FinalWeightsFloor, ParityCheck.NoiseFactor * report.NoiseFloor.FinalWeights)));
        // The verdict is the rule: every step within its allowance and the weights within theirs (exit 0), else exit 1.
        bool within = report.RelativeLossDifferences.Zip(report.AllowedLossDifferences).All(p => p.First <= p.Second)
                      && report.FinalWeightsWorstRelativeDifference <= report.FinalWeightsAllowed
                      && report.Layers.Values.All(d => d.MaxRel <= report.Bounds.Layer)
                      && report.GradientsWorstRelativeDifference <= report.Bounds.Gradient && report.InitTensorsDiffering == 0;
        Assert.That(report.Passed, Is.EqualTo(within));
        Assert.That(r.ExitCode, Is.EqualTo(within ? 0 : 1));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "parity.md")), Does.Contain("PyTorch's own noise floor"));
    }
}
