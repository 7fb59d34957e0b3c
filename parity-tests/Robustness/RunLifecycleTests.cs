using System.Diagnostics;
using System.Text.Json;
using NUnit.Framework;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>Interrupted, killed, concurrent, overwritten, diverging and disk-full runs, with the tool as a subprocess.</summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class RunLifecycleTests
{
    /// <summary>2 epochs of 8 steps (128 images, batch 16): long enough to interrupt, short enough to run often.</summary>
    static string TwoEpochConfig(string dir) => Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 128, testLimit: 64, epochs: 2, batch: 16));

    static readonly Lazy<string> reference = new(() =>
    {
        var dir = TempDir.New("reference");
        var run = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", TwoEpochConfig(dir), "--out", run]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        return File.ReadAllText(Path.Combine(run, "steps.csv"));
    });

    /// <summary>The uninterrupted run's steps.csv.</summary>
    static string ReferenceSteps => reference.Value;

    static void AssertCheckpointConsistent(string run)
    {
        var ck = Path.Combine(run, "checkpoints");
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(ck, "last.json")));
        Assert.That(Tool.Sha(Path.Combine(ck, "last.pt")), Is.EqualTo(state.RootElement.GetProperty("weights_sha256").GetString()), "last.pt does not match last.json");
        Assert.That(Tool.Sha(Path.Combine(ck, "last.optim.pt")), Is.EqualTo(state.RootElement.GetProperty("optimizer_sha256").GetString()), "last.optim.pt does not match last.json");
    }

    [Test]
    public void Sigint_checkpoints_exits_130_and_resume_matches_an_uninterrupted_run()
    {
        var expected = ReferenceSteps;
        var dir = TempDir.New("sigint");
        var run = Path.Combine(dir, "run");
        ToolResult r;
        using (var p = Tool.Start(dir, ["train", TwoEpochConfig(dir), "--out", run]))
        {
            p.WaitForLine(l => l.StartsWith("epoch 1/2 step ", StringComparison.Ordinal));
            p.Signal("INT");
            r = p.WaitForExit();
        }
        Assert.That(r.ExitCode, Is.EqualTo(130), r.ToString());
        Assert.That(r.Stderr, Does.Contain("resume with: dotnet resnet-mnist train --resume"));
        Assert.That(r.Stderr, Does.Not.Contain("error:"), r.ToString());
        AssertCheckpointConsistent(run);
        int stepsDone = File.ReadAllLines(Path.Combine(run, "steps.csv")).Length - 1;
        Assert.That(stepsDone, Is.InRange(1, 15), "the interrupt should land inside the run");

        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "steps.csv")), Is.EqualTo(expected), "steps.csv after interrupt + resume differs from an uninterrupted run");
    }

    /// <summary>Starts a run (or a resume), sends <paramref name="signal"/> once a line matching <paramref name="at"/> appears, and checks the signal's contract.</summary>
    static void InterruptWith(string dir, string[] args, string run, string signal, int code, string at)
    {
        ToolResult r;
        using (var p = Tool.Start(dir, args))
        {
            p.WaitForLine(l => l.StartsWith(at, StringComparison.Ordinal));
            p.Signal(signal);
            r = p.WaitForExit();
        }
        Assert.That(r.ExitCode, Is.EqualTo(code), r.ToString());
        Assert.That(r.Stderr, Does.Contain($"SIG{signal}: finishing the current step and writing a checkpoint"), r.ToString());
        Assert.That(r.Stderr, Does.Contain("resume with: dotnet resnet-mnist train --resume"), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("error:"), r.ToString());
        Assert.That(File.Exists(Path.Combine(run, ".lock")), Is.False, "the lock was left behind");
        AssertCheckpointConsistent(run);
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoints", "last.json")));
        Assert.That(state.RootElement.GetProperty("batches_done").GetInt32(), Is.GreaterThan(0), $"SIG{signal} should land inside an epoch\n{r}");
    }

    [Test]
    public void Sigterm_and_sighup_checkpoint_like_ctrl_c_and_resume_matches_an_uninterrupted_run()
    {
        var expected = ReferenceSteps;
        var dir = TempDir.New("sigtermhup");
        var run = Path.Combine(dir, "run");
        InterruptWith(dir, ["train", TwoEpochConfig(dir), "--out", run], run, "TERM", 143, "epoch 1/2 step ");
        Assert.That(File.ReadAllLines(Path.Combine(run, "steps.csv")).Length - 1, Is.InRange(1, 7), "SIGTERM should land inside epoch 1");
        InterruptWith(dir, ["train", "--resume", run], run, "HUP", 129, "epoch 2/2 step ");

        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "steps.csv")), Is.EqualTo(expected), "steps.csv after SIGTERM, SIGHUP and resumes differs from an uninterrupted run");
    }

    [Test]
    public void Kill9_before_the_first_checkpoint_can_be_resumed_or_rerun_without_force()
    {
        var expected = ReferenceSteps;
        var dir = TempDir.New("kill9early");
        var run = Path.Combine(dir, "run");
        var cfg = TwoEpochConfig(dir);
        int pid;
        using (var p = Tool.Start(dir, ["train", cfg, "--out", run]))
        {
            pid = p.Pid;
            p.WaitForLine(l => l.StartsWith("epoch 1/2 step ", StringComparison.Ordinal));
            p.Signal("KILL");
            Assert.That(p.WaitForExit().ExitCode, Is.EqualTo(137));
        }
        Assert.That(File.Exists(Path.Combine(run, "checkpoints", "last.json")), Is.False, "kill -9 should land before epoch 1's checkpoint");
        Assert.That(File.ReadAllText(Path.Combine(run, ".lock")), Does.StartWith($"pid={pid} start="), "the lock should name its process");
        var copy = Path.Combine(dir, "copy");
        foreach (var f in Directory.GetFiles(run, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(copy, Path.GetRelativePath(run, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        Directory.CreateDirectory(Path.Combine(copy, "checkpoints"));

        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(resumed.Stdout, Does.Contain($"taking over the lock of process {pid}, which no longer runs"), resumed.ToString());
        Assert.That(resumed.Stdout, Does.Contain("training from the start"), resumed.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "steps.csv")), Is.EqualTo(expected), "resume after kill -9 in epoch 1 differs from an uninterrupted run");
        Assert.That(File.Exists(Path.Combine(run, ".lock")), Is.False);

        var rerun = Tool.Run(dir, ["train", cfg, "--out", copy]);
        Assert.That(rerun.ExitCode, Is.EqualTo(0), rerun.ToString());
        Assert.That(rerun.Stdout, Does.Contain("taking over the lock").And.Contain("replacing a run that stopped before its first checkpoint"), rerun.ToString());
        Assert.That(File.ReadAllText(Path.Combine(copy, "steps.csv")), Is.EqualTo(expected), "a re-run after kill -9 in epoch 1 differs from an uninterrupted run");
    }

    [Test]
    public void Kill9_keeps_the_previous_checkpoint_and_resume_matches_an_uninterrupted_run()
    {
        var expected = ReferenceSteps;
        var dir = TempDir.New("kill9");
        var run = Path.Combine(dir, "run");
        ToolResult r;
        string lastPtSha;
        using (var p = Tool.Start(dir, ["train", TwoEpochConfig(dir), "--out", run]))
        {
            p.WaitForLine(l => l.StartsWith("Epoch 1,", StringComparison.Ordinal)); // printed after epoch 1's checkpoint
            p.Signal("KILL");
            r = p.WaitForExit();
            lastPtSha = Tool.Sha(Path.Combine(run, "checkpoints", "last.pt"));
        }
        Assert.That(r.ExitCode, Is.EqualTo(137), $"the run should have been killed during epoch 2\n{r}");
        AssertCheckpointConsistent(run);
        Assert.That(Directory.GetFiles(Path.Combine(run, "checkpoints"), "*.pt").Select(Path.GetFileName), Is.EquivalentTo(new[] { "last.pt", "last.optim.pt", "best.pt" }));

        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(resumed.Stdout, Does.Contain("resuming"));
        Assert.That(File.ReadAllText(Path.Combine(run, "steps.csv")), Is.EqualTo(expected), "steps.csv after kill -9 + resume differs from an uninterrupted run");
        Assert.That(Tool.Sha(Path.Combine(run, "checkpoints", "last.pt")), Is.Not.EqualTo(lastPtSha));
    }

    [Test]
    public void A_second_run_into_a_busy_folder_is_refused()
    {
        var dir = TempDir.New("lock");
        var run = Path.Combine(dir, "run");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 1024, testLimit: 64, epochs: 1, batch: 16));
        using var first = Tool.Start(dir, ["train", cfg, "--out", run]);
        first.WaitForLine(l => l.StartsWith("epoch 1/1 step ", StringComparison.Ordinal));

        var forced = Tool.Run(dir, ["train", cfg, "--out", run, "--force"]);
        Tool.AssertOneErrorLine(forced, 2, "another run is writing to this folder");
        // In epoch 1 there is no checkpoint yet, so the folder's only obstacle is the live run's lock.
        var plain = Tool.Run(dir, ["train", cfg, "--out", run]);
        Tool.AssertOneErrorLine(plain, 2, "another run is writing to this folder");
        var resume = Tool.Run(dir, ["train", "--resume", run]);
        Tool.AssertOneErrorLine(resume, 2, "another run is writing to this folder");

        first.Signal("INT");
        var r = first.WaitForExit();
        Assert.That(r.ExitCode, Is.EqualTo(130), r.ToString());
        AssertCheckpointConsistent(run);
    }

    [Test]
    public void An_existing_run_is_only_replaced_with_force_and_only_after_the_checks()
    {
        var dir = TempDir.New("force");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var before = Tool.FileHashes(run);

        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", run]), 2, "already holds a run");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before));

        // --force with bad data: refused before anything in the folder is touched.
        var badData = Tool.Run(dir, ["train", cfg, "--out", run, "--force", "--set", $"data.root={Path.Combine(dir, "nowhere")}"]);
        Tool.AssertOneErrorLine(badData, 2, "file not found");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before), "a refused --force run changed the existing run");

        var forced = Tool.Run(dir, ["train", cfg, "--out", run, "--force", "--set", "seed=1"]);
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "config.yaml")), Does.Contain("seed: 1"));
        AssertCheckpointConsistent(run);
    }

    [Test]
    public void A_diverging_loss_stops_at_the_step_and_keeps_the_last_good_checkpoint()
    {
        var dir = TempDir.New("nan");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var ck = Path.Combine(run, "checkpoints");
        var before = new[] { "last.pt", "last.optim.pt", "last.json", "best.pt" }.ToDictionary(f => f, f => Tool.Sha(Path.Combine(ck, f)));

        var r = Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2", "--set", "optimizer.lr=1e30"]);
        Tool.AssertOneErrorLine(r, 1, "training stopped, the last good checkpoint is kept in");
        Assert.That(r.Stderr, Does.Match(@"loss is (NaN|-?Infinity|∞|-∞) at step \d+ \(epoch 2, batch \d+\)"));
        foreach (var (f, sha) in before) Assert.That(Tool.Sha(Path.Combine(ck, f)), Is.EqualTo(sha), $"{f} changed");

        var fresh = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig(), "fresh.yaml"), "--out", Path.Combine(dir, "fresh"), "--set", "optimizer.lr=1e30"]);
        Tool.AssertOneErrorLine(fresh, 1, "no checkpoint had been written yet");
    }

    [Test]
    public void A_full_disk_fails_clearly_and_leaves_no_partial_file()
    {
        var mnt = TempDir.New("tiny");
        using (var m = Process.Start(new ProcessStartInfo("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]) { RedirectStandardError = true })!)
        {
            m.WaitForExit();
            if (m.ExitCode != 0)
                Assert.Fail($"mounting a 64 KiB tmpfs failed ({m.StandardError.ReadToEnd().Trim()}): this test needs root (or CAP_SYS_ADMIN) to simulate a full disk; run the tests as root");
        }
        try
        {
            var dir = TempDir.New("full");
            var run = Path.Combine(mnt, "run");
            var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig()), "--out", run]);
            Tool.AssertOneErrorLine(r, 1, "could not write");
            Assert.That(r.Stderr, Does.Contain("No space left on device"));
            var left = Directory.GetFiles(mnt, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(mnt, f)).ToList();
            Assert.That(left.Where(f => f.EndsWith(".tmp", StringComparison.Ordinal) || f.EndsWith(".pt", StringComparison.Ordinal) || f.EndsWith("last.json", StringComparison.Ordinal)),
                Is.Empty, $"partial files left: {string.Join(", ", left)}");
        }
        finally
        {
            using var u = Process.Start(new ProcessStartInfo("umount", [mnt]))!;
            u.WaitForExit();
        }
    }

    [Test]
    public void A_second_sigint_abandons_at_once_yet_writes_the_summary_and_releases_the_lock()
    {
        var dir = TempDir.New("sigint2");
        var run = Path.Combine(dir, "run");
        ToolResult r;
        using (var p = Tool.Start(dir, ["train", TwoEpochConfig(dir), "--out", run]))
        {
            // Both signals land inside the run: the first asks for a checkpoint after the current step, the second
            // (sent once the first was handled: two SIGINTs sent back to back may be delivered as one) stops the
            // process at once.
            p.WaitForLine(l => l.StartsWith("epoch 1/2 step ", StringComparison.Ordinal));
            p.Signal("INT");
            p.WaitForStderr("interrupt: finishing the current step");
            p.Signal("INT");
            r = p.WaitForExit();
        }
        Assert.That(r.ExitCode, Is.EqualTo(130), r.ToString());
        Assert.That(r.Stderr, Does.Contain("abandoned: the run stops now"), r.ToString());
        Assert.That(File.Exists(Path.Combine(run, ".lock")), Is.False, "the lock was left behind");
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.That(summary.RootElement.GetProperty("status").GetString(), Is.EqualTo("interrupted"));
        Assert.That(summary.RootElement.GetProperty("problem").GetString(), Does.StartWith("abandoned (a second interrupt): stopped at once"));
        // Whatever the first signal had written by then is a consistent checkpoint (or none): the folder resumes without --force.
        if (File.Exists(Path.Combine(run, "checkpoints", "last.json"))) AssertCheckpointConsistent(run);
        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "steps.csv")), Is.EqualTo(ReferenceSteps), "resume after an abandoned run differs from an uninterrupted run");
    }

    [Test]
    public void Resuming_a_finished_run_says_it_is_complete_and_changes_nothing()
    {
        var dir = TempDir.New("complete");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var before = Tool.FileHashes(run);
        var r = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout, Does.Contain($"{run}: already complete at 1 epochs (train.epochs 1); to train on: dotnet resnet-mnist train --resume {run} --set train.epochs=2"), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("resuming").And.Not.Contain("done:"), r.ToString());
        Assert.That(r.Stderr, Is.Empty, r.ToString());
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before), "a complete run was changed by a resume");
        Assert.That(File.Exists(Path.Combine(run, ".lock")), Is.False);
    }
}
