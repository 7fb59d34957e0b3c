using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Outputs;
using ResnetMnist.ParityTests.Robustness;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// A run with a validation split and <c>train.early_stop_patience</c>, through the tool: it stops at the right epoch with
/// one clear line, chooses the best epoch on validation accuracy, and its <c>summary.json</c> carries the split and the
/// reproduction record (kernel set, CPU, threads, peak memory, tool version, weights source and sha256).
/// </summary>
[TestFixture, Category("Training")]
public sealed class EarlyStoppingTests
{
    /// <summary>
    /// A forced plateau, deterministic: SGD at lr 1e-12 moves no float32 weight (an update 1e-12 × gradient is far below
    /// half an ulp of weights ~1e-2) and <c>model.bn_eval</c> keeps BatchNorm's running statistics, so every epoch
    /// predicts exactly as the first: validation accuracy never rises, and patience 1 stops after epoch 2 of 3.
    /// 64 images, val_split 0.25: 48 train (2 steps per epoch), 16 validation. Warm-started from the shared small
    /// run's best.pt, whose sha256 the summary must record.
    /// </summary>
    static readonly Lazy<(string Run, ToolResult Result)> Plateau = new(() =>
    {
        var dir = TempDir.New("early-stop");
        var cfg = Tool.WriteConfig(dir, $$"""
            seed: 0
            threads: 2
            data: {root: '{{Tool.SampleDataRoot}}', train_limit: 64, test_limit: 32, val_split: 0.25}
            model: {bn_eval: true, init_from: '{{TrainedRun.BestPt}}'}
            train: {epochs: 3, batch_size: 32, eval_batch_size: 64, early_stop_patience: 1}
            optimizer: {name: sgd, lr: 1.0e-12}
            """);
        var run = Path.Combine(dir, "run");
        return (run, Tool.Run(dir, ["train", cfg, "--out", run]));
    });

    static JsonElement Summary(string run) => JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;

    [Test]
    public void StopsAfterPatienceEpochsWithoutAHigherValidationAccuracy()
    {
        var (run, r) = Plateau.Value;
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout + r.Stderr, Does.Contain("early stop after epoch 2 of 3: validation accuracy has not risen above"), r.ToString());
        var metrics = RunDirectory.ReadMetrics(Path.Combine(run, "metrics.csv"));
        Assert.That(metrics.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2 }), "epoch 3 never ran");
        Assert.That(metrics[1].ValAccuracy, Is.EqualTo(metrics[0].ValAccuracy), "the plateau is exact");
        Assert.That(File.ReadLines(Path.Combine(run, "metrics.csv")).First(), Does.EndWith(",val_loss,val_accuracy"));
        Assert.That(RunDirectory.ReadSteps(Path.Combine(run, "steps.csv")), Has.Count.EqualTo(4));

        var s = Summary(run);
        Assert.That(s.GetProperty("status").GetString(), Is.EqualTo("completed"));
        Assert.That(s.GetProperty("stopped_early").GetBoolean(), Is.True);
        Assert.That(s.GetProperty("epochs").GetInt32(), Is.EqualTo(2));
        Assert.That(s.GetProperty("best_chosen_on").GetString(), Is.EqualTo("validation"));
        Assert.That(s.GetProperty("best_epoch").GetInt32(), Is.EqualTo(1), "a tie is no improvement: the first epoch stays best");
        Assert.That(s.GetProperty("val_images").GetInt32(), Is.EqualTo(16));
        Assert.That(s.GetProperty("train_images").GetInt32(), Is.EqualTo(48));
        Assert.That(s.GetProperty("best_val_accuracy").GetDouble(), Is.EqualTo(metrics[0].ValAccuracy));
        Assert.That(s.GetProperty("best_test_accuracy").GetDouble(), Is.EqualTo(metrics[0].TestAccuracy), "the test accuracy of the epoch validation chose");
        var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoints", "best.json"))).RootElement;
        Assert.That(best.GetProperty("epoch").GetInt32(), Is.EqualTo(1));
        Assert.That(best.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(metrics[0].TestAccuracy), "best.json: the chosen epoch's test accuracy");
        Assert.That(best.GetProperty("val_accuracy").GetDouble(), Is.EqualTo(metrics[0].ValAccuracy), "best.json: the accuracy that chose it");
    }

    [Test]
    public void ResumingAStoppedRunTrainsNoFurther()
    {
        var (run, first) = Plateau.Value;
        Assert.That(first.ExitCode, Is.EqualTo(0), first.ToString());
        using var tmp = new TempDir();
        var copy = TrainedRunCopy(run, tmp.Sub("run"));
        var r = Tool.Run(tmp.Path, ["train", "--resume", copy]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout + r.Stderr, Does.Contain("early stop after epoch 2 of 3"), r.ToString());
        Assert.That(RunDirectory.ReadSteps(Path.Combine(copy, "steps.csv")), Has.Count.EqualTo(4), "no step was added");
        Assert.That(Summary(copy).GetProperty("stopped_early").GetBoolean(), Is.True);
    }

    static string TrainedRunCopy(string from, string to)
    {
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(f) == ".lock") continue;
            var target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        return to;
    }

    [Test]
    public void SummaryRecordsHowToReproduceTheRun()
    {
        var (run, r) = Plateau.Value;
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var s = Summary(run);
        Assert.That(s.GetProperty("kernel_set").GetString(), Is.EqualTo(ResnetMnist.Native.KernelSet.Current));
        var cpu = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("model name", StringComparison.Ordinal));
        Assert.That(s.GetProperty("cpu_model").GetString(), Is.EqualTo(cpu[(cpu.IndexOf(':') + 1)..].Trim()));
        Assert.That(s.GetProperty("threads").GetInt32(), Is.EqualTo(2));
        Assert.That(s.GetProperty("peak_memory_mib").GetDouble(), Is.GreaterThan(0));
        Assert.That(s.GetProperty("tool_version").GetString(), Is.Not.Empty);
        Assert.That(s.GetProperty("weights_source").GetString(), Is.EqualTo("none"));
        Assert.That(s.GetProperty("weights_sha256").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(s.GetProperty("init_from").GetString(), Is.EqualTo(Path.GetFullPath(TrainedRun.BestPt)));
        Assert.That(s.GetProperty("init_from_sha256").GetString(), Is.EqualTo(Tool.Sha(TrainedRun.BestPt)));
    }

    [Test]
    public void WithoutASplitTheSummarySaysBestIsChosenOnTheTestSet()
    {
        var s = Summary(TrainedRun.Dir);
        Assert.That(s.GetProperty("best_chosen_on").GetString(), Is.EqualTo("test"));
        Assert.That(s.GetProperty("val_images").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(s.GetProperty("best_val_accuracy").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(s.GetProperty("stopped_early").GetBoolean(), Is.False);
        var metrics = RunDirectory.ReadMetrics(Path.Combine(TrainedRun.Dir, "metrics.csv"));
        Assert.That(s.GetProperty("best_test_accuracy").GetDouble(), Is.EqualTo(metrics.Max(m => m.TestAccuracy)));
        var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(TrainedRun.Dir, "checkpoints", "best.json"))).RootElement;
        Assert.That(best.TryGetProperty("val_accuracy", out _), Is.False, "best.json unchanged without a split");
        Assert.That(File.ReadLines(Path.Combine(TrainedRun.Dir, "metrics.csv")).First(),
            Is.EqualTo("epoch,train_loss,test_loss,test_accuracy,lr,epoch_seconds,train_images_per_second"), "metrics.csv unchanged without a split");
        Assert.That(s.GetProperty("peak_memory_mib").GetDouble(), Is.GreaterThan(0));
    }
}
