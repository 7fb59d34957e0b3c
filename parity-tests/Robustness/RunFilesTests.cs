using System.Text.Json;
using NUnit.Framework;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>What a run leaves on disk (train.save), and that steps.csv and summary.json are true while and after it runs.</summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class RunFilesTests
{
    static string[] CheckpointFiles(string run) =>
        Directory.GetFiles(Path.Combine(run, "checkpoints")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [TestCase("both", new[] { "best.json", "best.pt", "last.json", "last.optim.pt", "last.pt" })]
    [TestCase("last", new[] { "last.json", "last.optim.pt", "last.pt" })]
    [TestCase("best", new[] { "best.json", "best.pt" })]
    [TestCase("none", new string[0])]
    public void Train_save_keeps_only_the_chosen_checkpoints(string save, string[] expected)
    {
        var dir = TempDir.New("save-" + save);
        var run = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16)), "--set", $"train.save={save}", "--out", run]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(CheckpointFiles(run), Is.EqualTo(expected));
        Assert.That(File.ReadAllText(Path.Combine(run, "config.yaml")), Does.Contain($"save: {save}"));
        if (save == "both") // one epoch: best.pt is that epoch's last.pt, stored once (a hard link)
        {
            Assert.That(Tool.Sha(Path.Combine(run, "checkpoints", "best.pt")), Is.EqualTo(Tool.Sha(Path.Combine(run, "checkpoints", "last.pt"))));
            using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%i", Path.Combine(run, "checkpoints", "best.pt"), Path.Combine(run, "checkpoints", "last.pt")]) { RedirectStandardOutput = true })!;
            var inodes = stat.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            stat.WaitForExit();
            Assert.That(inodes.Distinct().Count(), Is.EqualTo(1), "best.pt is a second copy of last.pt");
        }
        if (save is "best" or "none")
        {
            var resumed = Tool.Run(dir, ["train", "--resume", run]);
            Tool.AssertOneErrorLine(resumed, 2, "cannot resume: the run keeps no resumable checkpoint (train.save: " + save + ")");
        }
    }

    [Test]
    public void The_done_line_keeps_a_long_run_path_on_one_line_when_redirected()
    {
        var dir = TempDir.New("done");
        var run = Path.Combine(dir, new string('r', 120), new string('s', 120));
        var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16)), "--out", run]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var done = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).Single(l => l.StartsWith("done: ", StringComparison.Ordinal));
        Assert.That(done, Does.EndWith("→ " + run), r.ToString());
    }

    [Test]
    public void Steps_csv_is_live_during_an_epoch_and_an_interrupted_summary_counts_the_work_done()
    {
        var dir = TempDir.New("live");
        var run = Path.Combine(dir, "run");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 512, testLimit: 32, epochs: 2, batch: 16));
        ToolResult r;
        int linesWhileRunning;
        using (var p = Tool.Start(dir, ["train", cfg, "--out", run]))
        {
            p.WaitForLine(l => l.StartsWith("epoch 1/2 step 4/", StringComparison.Ordinal));
            using (var f = new FileStream(Path.Combine(run, "steps.csv"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var reader = new StreamReader(f))
                linesWhileRunning = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1;
            p.Signal("INT");
            r = p.WaitForExit();
        }
        Assert.That(linesWhileRunning, Is.GreaterThanOrEqualTo(4), "steps.csv held too few steps while epoch 1 ran");
        Assert.That(r.ExitCode, Is.EqualTo(130), r.ToString());
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var s = summary.RootElement;
        Assert.That(s.GetProperty("status").GetString(), Is.EqualTo("interrupted"));
        // The interrupt lands a few steps after step 4 on a quiet machine, possibly after epoch 1 on a busy one (the
        // tool keeps training while this test is descheduled): the summary must count whatever was done.
        const int stepsPerEpoch = 512 / 16;
        long steps = s.GetProperty("steps").GetInt64();
        Assert.That(steps, Is.InRange(4, 2 * stepsPerEpoch - 1), "interrupted within the run");
        int fullEpochs = (int)(steps / stepsPerEpoch);
        Assert.That(s.GetProperty("epochs").GetInt32(), steps % stepsPerEpoch == 0 ? Is.InRange(fullEpochs - 1, fullEpochs) : Is.EqualTo(fullEpochs),
            $"epochs completed after {steps} steps of {stepsPerEpoch} per epoch");
        Assert.That(s.GetProperty("train_seconds").GetDouble(), Is.GreaterThan(0), "an interrupted epoch's time is counted");
        Assert.That(File.ReadAllLines(Path.Combine(run, "steps.csv")).Length - 1, Is.EqualTo(steps));

        var resumed = Tool.Run(dir, ["train", "--resume", run]);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        using var done = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.That(done.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(2));
        Assert.That(done.RootElement.GetProperty("steps").GetInt64(), Is.EqualTo(64));
        Assert.That(File.ReadAllLines(Path.Combine(run, "steps.csv")).Length - 1, Is.EqualTo(64));
        Assert.That(done.RootElement.GetProperty("train_seconds").GetDouble(), Is.GreaterThan(s.GetProperty("train_seconds").GetDouble()));
        Assert.That(resumed.Stdout, Does.Contain("test loss "), "the epoch line shows the test loss");
        Assert.That(resumed.Stdout.Split('\n').Single(l => l.StartsWith("done: ", StringComparison.Ordinal)).TrimEnd('\r'), Does.EndWith("→ " + run),
            "the done line keeps the run path whole");
    }
}
