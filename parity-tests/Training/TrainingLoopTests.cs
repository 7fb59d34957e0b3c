using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// The one training loop (<see cref="TrainingLoop"/>) that <c>train</c>, <c>parity</c> and <c>bench</c> drive: its
/// events per epoch, partial last batches, and that timing its phases (what <c>bench</c> does) leaves every step
/// bit-identical to an untimed run. Whether the steps are the reference's is TrainingParityTests' and ResumeTests' job.
/// </summary>
[TestFixture, Category("Training")]
public sealed class TrainingLoopTests
{
    // 40 images in batches of 16: 16, 16, 8 per epoch; onecycle steps the learning rate (and momentum) per batch.
    static TrainingConfig Tiny() => ConfigLoader.Parse($$"""
        seed: 5
        threads: 2
        data: {dataset: mnist, root: '{{Repo.Path("data")}}', train_limit: 40, test_limit: 8}
        train: {epochs: 2, batch_size: 16, dtype: float64}
        optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
        scheduler: {name: onecycle, max_lr: 0.05}
        """, null);

    sealed record Ran(List<LoopEvent> Events, Dictionary<string, byte[]> Weights, PhaseTimes? Times);

    static Ran RunLoop(bool timed)
    {
        using var session = Session.Create(Tiny());
        using var optimizer = Optimizers.Create(session.Config.Optimizer, session.Model.parameters());
        var hooks = new StepHooks { Times = timed ? new PhaseTimes() : null };
        var loop = new TrainingLoop(session, optimizer) { Hooks = hooks };
        var events = loop.Run().ToList();
        var weights = session.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());
        return new Ran(events, weights, hooks.Times);
    }

    [Test]
    public void EachEpochStartsStepsEveryBatchAndEnds()
    {
        var ran = RunLoop(timed: false);
        var kinds = ran.Events.Select(e => e switch
        {
            EpochStarted s => $"start {s.Epoch} {s.FirstBatch}/{s.Batches}",
            StepDone s => $"step {s.Record.Step} epoch {s.Record.Epoch} batch {s.Batch}/{s.Batches} images {s.Images}",
            EpochDone d => $"done {d.Epoch}",
            _ => "?",
        });
        Assert.That(kinds, Is.EqualTo(new[]
        {
            "start 1 0/3", "step 1 epoch 1 batch 1/3 images 16", "step 2 epoch 1 batch 2/3 images 16", "step 3 epoch 1 batch 3/3 images 8", "done 1",
            "start 2 0/3", "step 4 epoch 2 batch 1/3 images 16", "step 5 epoch 2 batch 2/3 images 16", "step 6 epoch 2 batch 3/3 images 8", "done 2",
        }));
        // An epoch's train loss is the mean of its batch losses; its lr is its last step's.
        var steps = ran.Events.OfType<StepDone>().ToList();
        var epochs = ran.Events.OfType<EpochDone>().ToList();
        for (int e = 0; e < 2; e++)
        {
            var own = steps.Where(s => s.Record.Epoch == e + 1).ToList();
            Assert.That(epochs[e].TrainLoss, Is.EqualTo(own.Sum(s => s.Record.Loss) / 3).Within(1e-15 * epochs[e].TrainLoss), $"train loss of epoch {e + 1}");
            Assert.That(epochs[e].Lr, Is.EqualTo(own[^1].Record.Lr), $"lr of epoch {e + 1}");
        }
        Assert.That(steps.Select(s => s.Record.Lr).Distinct().Count(), Is.EqualTo(6), "onecycle changes the learning rate every step");
    }

    [Test]
    public void TimingThePhasesLeavesEveryStepBitIdentical()
    {
        var plain = RunLoop(timed: false);
        var timed = RunLoop(timed: true);
        var a = plain.Events.OfType<StepDone>().Select(s => (s.Record.Loss, s.Record.Lr)).ToList();
        var b = timed.Events.OfType<StepDone>().Select(s => (s.Record.Loss, s.Record.Lr)).ToList();
        Assert.That(b, Is.EqualTo(a), "losses and learning rates");
        foreach (var (name, bytes) in plain.Weights)
            Assert.That(timed.Weights[name], Is.EqualTo(bytes), $"{name} after the run");
        var t = timed.Times!;
        Assert.That(t.Steps, Is.EqualTo(6));
        Assert.That(new[] { t.Data, t.Forward, t.Backward, t.Optimizer }, Is.All.GreaterThan(0), "every phase took some time");
    }

    /// <summary>The step sequence exists once: a second <c>backward()</c> in the library would be a second loop.</summary>
    [Test]
    public void TheLibraryHoldsExactlyOneBackwardCall()
    {
        var calls = Directory.EnumerateFiles(Repo.Path("src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: Path.GetRelativePath(Repo.Root, f), Line: i + 1, Text: line)))
            .Where(l => l.Text.Contains(".backward(", StringComparison.Ordinal))
            .Select(l => $"{l.File}:{l.Line}")
            .ToList();
        Assert.That(calls, Has.Count.EqualTo(1), string.Join(", ", calls));
        Assert.That(calls[0], Does.StartWith(Path.Combine("src", "Training", "TrainingLoop.cs") + ":"));
    }
}
