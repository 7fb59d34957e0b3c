using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using ResnetMnist.Outputs;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// What a run may touch and what it may keep: --force and foreign files or symbolic links, system folders, locks
/// of live and dead processes, diverged weights, edited checkpoint states, empty splits and extreme batch sizes.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class RunFolderSafetyTests
{
    static readonly string[] CheckpointFiles = ["last.pt", "last.optim.pt", "last.json", "best.pt"];

    static Dictionary<string, string> CheckpointShas(string run) =>
        CheckpointFiles.ToDictionary(f => f, f => Tool.Sha(Path.Combine(run, "checkpoints", f)));

    [Test]
    public void Force_deletes_only_the_tools_own_files_and_never_follows_a_link()
    {
        var dir = TempDir.New("forcekeep");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var outside = Directory.CreateDirectory(Path.Combine(dir, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "outside the run folder");
        File.WriteAllText(Path.Combine(outside, "precious.pt"), "someone's weights");
        File.WriteAllText(Path.Combine(run, "notes.txt"), "mine");
        File.WriteAllText(Path.Combine(run, "checkpoints", "my-model.pt"), "mine too");
        File.CreateSymbolicLink(Path.Combine(run, "checkpoints", "elsewhere"), outside);
        File.Delete(Path.Combine(run, "checkpoints", "best.pt"));
        File.CreateSymbolicLink(Path.Combine(run, "checkpoints", "best.pt"), Path.Combine(outside, "precious.pt"));
        var staleTemp = Path.Combine(run, "checkpoints", ".last.pt.4242.0123456789abcdef.tmp");
        File.WriteAllText(staleTemp, "left by a crash");
        var outsideBefore = Tool.FileHashes(outside);

        var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig()), "--out", run, "--force", "--set", "seed=1"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(Tool.FileHashes(outside), Is.EqualTo(outsideBefore), "files outside the run folder changed");
        Assert.That(File.ReadAllText(Path.Combine(run, "notes.txt")), Is.EqualTo("mine"));
        Assert.That(File.ReadAllText(Path.Combine(run, "checkpoints", "my-model.pt")), Is.EqualTo("mine too"));
        Assert.That(new FileInfo(Path.Combine(run, "checkpoints", "elsewhere")).LinkTarget, Is.EqualTo(outside), "a foreign link was removed");
        Assert.That(new FileInfo(Path.Combine(run, "checkpoints", "best.pt")).LinkTarget, Is.Null, "best.pt should be the run's own file again");
        Assert.That(File.Exists(staleTemp), Is.False, "the tool's stale temp file should be gone");
        Assert.That(File.ReadAllText(Path.Combine(run, "config.yaml")), Does.Contain("seed: 1"));
    }

    [Test]
    public void A_checkpoints_folder_or_lock_that_links_out_of_the_run_is_refused_even_with_force()
    {
        var dir = TempDir.New("cklink");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var outside = Path.Combine(dir, "outside");
        Directory.Move(Path.Combine(run, "checkpoints"), outside);
        Directory.CreateSymbolicLink(Path.Combine(run, "checkpoints"), outside);
        var before = Tool.FileHashes(outside);
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", run, "--force"]), 2, "checkpoints: is a symbolic link");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run]), 2, "checkpoints: is a symbolic link");
        Assert.That(Tool.FileHashes(outside), Is.EqualTo(before));

        // A .lock that links out of the run would have its target truncated when the lock is taken.
        var run2 = TrainedRun.CopyTo(Path.Combine(dir, "run2"));
        var victim = Path.Combine(dir, "victim.txt");
        File.WriteAllText(victim, "not the tool's");
        File.CreateSymbolicLink(Path.Combine(run2, ".lock"), victim);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run2]), 2, ".lock: is a symbolic link");
        Assert.That(File.ReadAllText(victim), Is.EqualTo("not the tool's"));
    }

    [Test]
    public void A_folder_the_tool_did_not_create_is_refused_unless_empty()
    {
        var dir = TempDir.New("foreign");
        var foreign = Directory.CreateDirectory(Path.Combine(dir, "project")).FullName;
        File.WriteAllText(Path.Combine(foreign, "config.yaml"), "someone else's config\n");
        Directory.CreateDirectory(Path.Combine(foreign, "checkpoints"));
        File.WriteAllText(Path.Combine(foreign, "checkpoints", "last.pt"), "someone else's weights");
        var before = Tool.FileHashes(foreign);
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", foreign, "--force"]), 2, "is not a run folder of this tool");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", foreign]), 2, "is not a run folder of this tool");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", foreign]), 2, "no run to resume here");
        Assert.That(Tool.FileHashes(foreign), Is.EqualTo(before));
    }

    [TestCase("train", "/")]
    [TestCase("train", "/etc")]
    [TestCase("train", "/usr/")]
    [TestCase("resume", "/")]
    [TestCase("sweep", "/")]
    public void System_folders_are_refused(string command, string folder)
    {
        var dir = TempDir.New("system");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        string[] args = command switch
        {
            "train" => ["train", cfg, "--out", folder, "--force"],
            "resume" => ["train", "--resume", folder, "--force"],
            _ => ["sweep", cfg, "--grid", "seed=0,1", "--out", folder, "--force"],
        };
        Tool.AssertOneErrorLine(Tool.Run(dir, args), 2, "is a system or home folder");
    }

    [Test]
    public void A_lock_of_a_live_process_is_respected_and_one_of_a_dead_process_is_taken_over()
    {
        var dir = TempDir.New("stalelock");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var lockFile = Path.Combine(run, ".lock");
        var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        // This test process is alive, with exactly this start time, and holds no flock on the file.
        File.WriteAllText(lockFile, $"pid={Environment.ProcessId} start={RunLock.StartTime(Environment.ProcessId)} boot={boot}\n");
        var before = Tool.FileHashes(run);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run]), 2, $"another run is writing to this folder (process {Environment.ProcessId}");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before));

        // The same pid with another start time is a reused pid: the process that wrote the lock is gone, and the
        // lock is no longer respected (taking it over is shown by the kill -9 test in RunLifecycleTests).
        File.WriteAllText(lockFile, $"pid={Environment.ProcessId} start=1 boot={boot}\n");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run, "--set", "optimizer.lr=0.5"]), 2, "the config changed");
    }

    [Test]
    public void Divergence_at_an_epochs_last_step_keeps_the_previous_checkpoint_and_reports_diverged()
    {
        var dir = TempDir.New("lastdiverge");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var before = CheckpointShas(run);
        var metricsBefore = File.ReadAllText(Path.Combine(run, "metrics.csv"));

        // Epoch 2 is one batch of all 64 images: its only step (a finite loss) makes the weights huge or NaN.
        var r = Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2", "--set", "train.batch_size=64", "--set", "optimizer.lr=1e30"]);
        Tool.AssertOneErrorLine(r, 1, "after epoch 2 (step 3); training stopped, the last good checkpoint is kept in");
        Assert.That(r.Stderr, Does.Match(@"(weight \S+ is not finite|test loss is (NaN|-?Infinity|∞|-∞))"), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("Epoch 2,"), "the diverged epoch was reported as finished");
        Assert.That(CheckpointShas(run), Is.EqualTo(before), "a checkpoint file changed");
        Assert.That(File.ReadAllText(Path.Combine(run, "metrics.csv")), Is.EqualTo(metricsBefore), "the diverged epoch reached metrics.csv");
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))))
        {
            Assert.That(summary.RootElement.GetProperty("status").GetString(), Is.EqualTo("diverged"));
            Assert.That(summary.RootElement.GetProperty("problem").GetString(), Does.Contain("after epoch 2"));
            Assert.That(summary.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(1));
            Assert.That(summary.RootElement.GetProperty("final_test_loss").ValueKind, Is.EqualTo(JsonValueKind.Number), "the last good epoch's test loss");
        }

        // The kept checkpoint is good: resuming from it with a sane config trains and finishes.
        // config.yaml now records the diverged attempt (lr 1e30, batch 64): resume with a sane lr, as the message advises.
        var resumed = Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "optimizer.lr=0.001"]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        using var done = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.That(done.RootElement.GetProperty("status").GetString(), Is.EqualTo("completed"));
        Assert.That(done.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(2));
    }

    [Test]
    public void A_first_epoch_that_diverges_writes_no_checkpoint_and_can_be_rerun_without_force()
    {
        var dir = TempDir.New("firstdiverge");
        var run = Path.Combine(dir, "run");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, batch: 32));
        var r = Tool.Run(dir, ["train", cfg, "--out", run, "--set", "optimizer.lr=1e30"]);
        Tool.AssertOneErrorLine(r, 1, "after epoch 1 (step 1); training stopped, no checkpoint had been written yet");
        Assert.That(Directory.GetFiles(Path.Combine(run, "checkpoints")), Is.Empty, "diverged weights were written");
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))))
        {
            Assert.That(summary.RootElement.GetProperty("status").GetString(), Is.EqualTo("diverged"));
            Assert.That(summary.RootElement.GetProperty("best_test_accuracy").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        // Nothing to keep: the folder passes the run-folder checks for a re-run without --force and for a resume (which
        // starts over); the data check that comes after them is what stops these two, before any training work.
        var missing = $"data.root={Path.Combine(dir, "nowhere")}";
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", run, "--set", missing]), 2, "file not found");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run, "--set", missing]), 2, "file not found");
    }

    [TestCase("epochs_done", -5, "epochs_done: -5; allowed: an integer >= 0")]
    [TestCase("epochs_done", 7, "epochs_done is 7; allowed: 0..1")]
    [TestCase("batches_done", 99, "global_step: 2 is less than batches_done 99")]
    [TestCase("global_step", 1000, "global_step is 1000, but epochs_done 1 × 2 batches + batches_done 0 = 2")]
    public void An_edited_checkpoint_state_is_refused_naming_the_field(string field, double value, string message)
    {
        var dir = TempDir.New("state");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var stateFile = Path.Combine(run, "checkpoints", "last.json");
        var state = JsonNode.Parse(File.ReadAllText(stateFile))!;
        state[field] = field == "best_accuracy" ? JsonValue.Create(value) : JsonValue.Create((long)value);
        File.WriteAllText(stateFile, state.ToJsonString());
        var before = Tool.FileHashes(run);

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run]), 2, $"last.json: {message}");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before), "a refused resume changed the run");
    }

    [Test]
    public void A_checkpoint_with_non_finite_weights_is_refused_on_resume()
    {
        var dir = TempDir.New("nanpt");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var ck = Path.Combine(run, "checkpoints");
        // A last.pt as a diverged run would have written it, with last.json naming it, so only the values are wrong.
        byte[] bytes;
        using (var model = ResnetMnist.Model.Models.resnet18(1, 10))
        {
            using (TorchSharp.torch.no_grad()) model.state_dict()["layer2.0.conv1.weight"].fill_(double.NaN);
            bytes = ResnetMnist.Training.CheckpointStore.WeightsBytes(model);
        }
        File.WriteAllBytes(Path.Combine(ck, "last.pt"), bytes);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(ck, "last.json")))!;
        state["weights_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        File.WriteAllText(Path.Combine(ck, "last.json"), state.ToJsonString());
        var before = Tool.FileHashes(run);

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2"]), 2,
            "last.pt: layer2.0.conv1.weight holds NaN or infinite values: this checkpoint diverged");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before), "a refused resume changed the run");
    }

    /// <summary>A data root whose <paramref name="emptySplit"/> files hold zero images and the other split the sample's.</summary>
    static string DataWithAnEmptySplit(string dir, string emptySplit)
    {
        var raw = Directory.CreateDirectory(Path.Combine(dir, "data", "MNIST", "raw")).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(Tool.SampleDataRoot, "MNIST", "raw"), "*.gz"))
            if (!Path.GetFileName(f).StartsWith(emptySplit, StringComparison.Ordinal)) File.Copy(f, Path.Combine(raw, Path.GetFileName(f)));
        static byte[] Be(params int[] xs) => xs.SelectMany(x => BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(x))).ToArray();
        File.WriteAllBytes(Path.Combine(raw, $"{emptySplit}-images-idx3-ubyte"), Be(2051, 0, 28, 28));
        File.WriteAllBytes(Path.Combine(raw, $"{emptySplit}-labels-idx1-ubyte"), Be(2049, 0));
        return Path.Combine(dir, "data");
    }

    [TestCase("train", "the training split has no images")]
    [TestCase("t10k", "the test split has no images")]
    public void An_empty_split_is_refused_before_training(string split, string message)
    {
        var dir = TempDir.New("empty" + split);
        var root = DataWithAnEmptySplit(dir, split);
        var run = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig()), "--out", run, "--set", $"data.root={root}"]);
        Tool.AssertOneErrorLine(r, 2, message);
        Assert.That(Directory.Exists(run), Is.False, "a refused run created its folder");
    }

    [Test]
    public void Evaluate_on_an_empty_test_split_is_refused_not_reported_as_zero_accuracy()
    {
        var dir = TempDir.New("emptyeval");
        var root = DataWithAnEmptySplit(dir, "t10k");
        var r = Tool.Run(dir, ["evaluate", TrainedRun.Dir, "--set", $"data.root={root}"]);
        Tool.AssertOneErrorLine(r, 2, "the test split has no images");
    }

    [Test]
    public void Non_finite_betas_and_absurd_batch_sizes_are_refused_and_a_batch_larger_than_the_split_is_one_partial_batch()
    {
        var dir = TempDir.New("extremes");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", Path.Combine(dir, "nan"), "--set", "optimizer.betas=[NaN, NaN]"]), 2,
            "optimizer.betas: each beta must be a number in [0, 1), found 'NaN'");

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", Path.Combine(dir, "absurd"), "--set", "train.batch_size=2147483647"]), 2,
            "train.batch_size: must be <= 65536, found 2147483647");

        var run = Path.Combine(dir, "huge");
        var r = Tool.Run(dir, ["train", cfg, "--out", run, "--set", "train.batch_size=65536", "--set", "train.eval_batch_size=65536"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var steps = RunDirectory.ReadSteps(Path.Combine(run, "steps.csv"));
        Assert.That(steps, Has.Count.EqualTo(1), "64 images in batches of 65536: one step");
        Assert.That(double.IsFinite(steps[0].Loss));
        var metrics = RunDirectory.ReadMetrics(Path.Combine(run, "metrics.csv"));
        Assert.That(metrics.Single().TrainLoss, Is.EqualTo(steps[0].Loss), "the epoch's loss is its one batch's loss");
    }
}
