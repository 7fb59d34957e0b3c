using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests.Training;

/// <summary>A run stopped and resumed gives the same steps.csv as an uninterrupted run, bit for bit.</summary>
[TestFixture, Category("Training")]
public sealed class ResumeTests
{
    static TrainingConfig Config() => ConfigLoader.Parse(
        "seed: 5\nthreads: 2\ndata: {root: " + Repo.Path("data") + ", train_limit: 96, test_limit: 32}\n" +
        "train: {epochs: 3, batch_size: 32}\noptimizer: {name: sgd, lr: 0.01, momentum: 0.9}\nscheduler: {name: step, step_size: 1, gamma: 0.5}\n", null);

    static string Uninterrupted(TempDir tmp)
    {
        LibraryRun.Run(Config(), tmp.Sub("full"));
        return File.ReadAllText(Path.Combine(tmp.Sub("full"), "steps.csv"));
    }

    [Test]
    public void StopAfterEpochOneThenResume()
    {
        using var tmp = new TempDir();
        var expected = Uninterrupted(tmp);
        using var cts = new CancellationTokenSource();
        var first = LibraryRun.Run(Config(), tmp.Sub("resumed"), observer: new LibraryRun.StopAt(cts, afterEpoch: 1), cancel: cts.Token);
        Assert.That(first.Status, Is.EqualTo(RunStatus.Interrupted));
        Assert.That(first.Epochs, Has.Count.EqualTo(1));
        var second = LibraryRun.Run(Config(), tmp.Sub("resumed"), resume: true);
        Assert.That(second.Status, Is.EqualTo(RunStatus.Completed));
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Is.EqualTo(expected));
    }

    [Test]
    public void StopMidEpochThenResume()
    {
        using var tmp = new TempDir();
        var expected = Uninterrupted(tmp);
        using var cts = new CancellationTokenSource();
        LibraryRun.Run(Config(), tmp.Sub("resumed"), observer: new LibraryRun.StopAt(cts, afterStep: 5), cancel: cts.Token);
        Assert.That(RunDirectory.ReadSteps(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Has.Count.EqualTo(5));
        LibraryRun.Run(Config(), tmp.Sub("resumed"), resume: true);
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Is.EqualTo(expected));
    }

    [Test]
    public void ChannelsLastRunCheckpointsAndResumesExactly()
    {
        // model.channels_last gives the optimizer state channels-last strides; checkpoints must still be written
        // and a resumed run must continue exactly.
        var cfg = Config() with { Model = Config().Model with { ChannelsLast = true } };
        using var tmp = new TempDir();
        LibraryRun.Run(cfg, tmp.Sub("full"));
        using var cts = new CancellationTokenSource();
        LibraryRun.Run(cfg, tmp.Sub("resumed"), observer: new LibraryRun.StopAt(cts, afterEpoch: 1), cancel: cts.Token);
        LibraryRun.Run(cfg, tmp.Sub("resumed"), resume: true);
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("resumed"), "steps.csv")),
            Is.EqualTo(File.ReadAllText(Path.Combine(tmp.Sub("full"), "steps.csv"))));
    }

    [Test]
    public void ResumeRefusesAResultChangingConfig()
    {
        using var tmp = new TempDir();
        using var cts = new CancellationTokenSource();
        LibraryRun.Run(Config(), tmp.Sub("run"), observer: new LibraryRun.StopAt(cts, afterStep: 2), cancel: cts.Token);
        var changed = Config() with { Train = Config().Train with { BatchSize = 16 } };
        var e = Assert.Throws<CheckpointException>(() => LibraryRun.Run(changed, tmp.Sub("run"), resume: true))!;
        Assert.That(e.Message, Does.Contain("train.batch_size was '32', now '16'"));
    }
}
