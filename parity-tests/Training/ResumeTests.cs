using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using ResnetMnist.ParityTests.Robustness;

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

    static TrainingConfig WithEpochs(TrainingConfig cfg, int epochs) => cfg with { Train = cfg.Train with { Epochs = epochs } };

    /// <summary>metrics.csv without its two timing columns (epoch_seconds, train_images_per_second), which no two runs share.</summary>
    static string[] MetricsWithoutTimes(string run) =>
        File.ReadAllLines(Path.Combine(run, "metrics.csv")).Select(l => string.Join(",", l.Split(',')[..5])).ToArray();

    [Test]
    public void AFinishedRunGrowsByAnEpochWithoutForceAndEqualsALongerRun()
    {
        using var tmp = new TempDir();
        LibraryRun.Run(WithEpochs(Config(), 2), tmp.Sub("full"));
        var first = LibraryRun.Run(WithEpochs(Config(), 1), tmp.Sub("grown"));
        Assert.That(first.Status, Is.EqualTo(RunStatus.Completed));
        var second = LibraryRun.Run(WithEpochs(Config(), 2), tmp.Sub("grown"), resume: true);
        Assert.That(second.Status, Is.EqualTo(RunStatus.Completed));
        Assert.That(second.Epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 1, 2 }), "the first epoch comes from the checkpoint, the second was trained");
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("grown"), "steps.csv")), Is.EqualTo(File.ReadAllText(Path.Combine(tmp.Sub("full"), "steps.csv"))));
        Assert.That(MetricsWithoutTimes(tmp.Sub("grown")), Is.EqualTo(MetricsWithoutTimes(tmp.Sub("full"))));
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Sub("grown"), "summary.json")));
        Assert.That(summary.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(2));
        Assert.That(summary.RootElement.GetProperty("steps").GetInt64(), Is.EqualTo(6));

        // Resumed again at its length, the run is complete: nothing is trained and nothing in the folder changes.
        var before = Tool.FileHashes(tmp.Sub("grown"));
        var again = TrainingRun.Train(WithEpochs(Config(), 2), tmp.Sub("grown"), options: new RunOptions(Resume: true));
        Assert.That(again.AlreadyComplete, Is.True);
        Assert.That(again.Summary.Epochs, Is.EqualTo(2));
        Assert.That(again.Summary.BestEpoch, Is.EqualTo(second.BestEpoch));
        Assert.That(Tool.FileHashes(tmp.Sub("grown")), Is.EqualTo(before), "a complete run was changed by a resume");
    }

    /// <summary>Collects the observer's notes.</summary>
    sealed class Notes : ITrainingObserver
    {
        public List<string> Lines { get; } = [];
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { }
        public void EpochFinished(EpochRecord epoch, bool best) { }
        public void Info(string message) => Lines.Add(message);
    }

    [Test]
    public void ResumeNeedsNotTheInitFromFileAndDoesNotWarmStartAgain()
    {
        using var tmp = new TempDir();
        var init = tmp.Sub("init.pt");
        TorchSharp.torch.manual_seed(11);
        using (var source = ResnetMnist.Model.Models.resnet18(1, 10)) File.WriteAllBytes(init, CheckpointStore.WeightsBytes(source));
        var cfg = Config() with { Model = Config().Model with { InitFrom = init } };
        LibraryRun.Run(cfg, tmp.Sub("full"));
        var notes = new Notes();
        using var cts = new CancellationTokenSource();
        LibraryRun.Run(cfg, tmp.Sub("resumed"), observer: new LibraryRun.StopAt(cts, afterStep: 4), cancel: cts.Token);
        File.Delete(init);
        LibraryRun.Run(cfg, tmp.Sub("resumed"), resume: true, observer: notes);
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Is.EqualTo(File.ReadAllText(Path.Combine(tmp.Sub("full"), "steps.csv"))));
        Assert.That(notes.Lines, Has.Some.StartsWith("resuming "), "the notes were collected");
        Assert.That(notes.Lines, Has.None.StartsWith("init_from:"), "the warm start was reported again on resume");
        // The run's config still names the file it started from.
        Assert.That(ConfigLoader.Load(Path.Combine(tmp.Sub("resumed"), "config.yaml"), []).Model.InitFrom, Is.EqualTo(init));
    }

    /// <summary>Throws from the observer at a given step, as any error inside a run would.</summary>
    sealed class FailAt(long step) : ITrainingObserver
    {
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord s, int batch, int batches, double imagesPerSecond) { if (s.Step == step) throw new IOException($"disk gone at step {s.Step}"); }
        public void EpochFinished(EpochRecord epoch, bool best) { }
        public void Info(string message) { }
    }

    [Test]
    public void AnErrorInsideARunWritesItsSummaryAndReleasesTheLock()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<IOException>(() => LibraryRun.Run(Config(), tmp.Sub("run"), observer: new FailAt(5)))!;
        Assert.That(e.Message, Is.EqualTo("disk gone at step 5"));
        Assert.That(File.Exists(Path.Combine(tmp.Sub("run"), ".lock")), Is.False, "the lock was left behind");
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Sub("run"), "summary.json")));
        Assert.That(summary.RootElement.GetProperty("status").GetString(), Is.EqualTo("failed"));
        Assert.That(summary.RootElement.GetProperty("problem").GetString(), Is.EqualTo("disk gone at step 5"));
        Assert.That(summary.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(1), "epoch 1's checkpoint (3 steps) was written before step 5");
        // The run resumes from that checkpoint.
        Assert.That(LibraryRun.Run(Config(), tmp.Sub("run"), resume: true).Status, Is.EqualTo(RunStatus.Completed));
    }
}
