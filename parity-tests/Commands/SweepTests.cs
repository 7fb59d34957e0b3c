using System.Globalization;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Sweeps;
using ResnetMnist.Training;
using SkiaSharp;

namespace ResnetMnist.ParityTests.Commands;

/// <summary>The sweep's grid, shards and config overrides, through the library (no process, no training).</summary>
[TestFixture, Category("Tool")]
public sealed class SweepGridTests
{
    [Test]
    public void Grid_values_are_split_at_top_level_commas_only()
    {
        Assert.That(SweepGrid.ParseAxis("optimizer.betas=[0.9,0.99],[0.8,0.99]"),
            Has.Property("Key").EqualTo("optimizer.betas").And.Property("Values").EqualTo(new[] { "[0.9,0.99]", "[0.8,0.99]" }));
        Assert.That(SweepGrid.ParseAxis("optimizer.name=sgd, adam").Values, Is.EqualTo(new[] { "sgd", "adam" }));
        Assert.That(SweepGrid.SplitValues("{a: 1, b: [2, 3]},'x,y',\"p,q\"", "k={a: 1, b: [2, 3]},'x,y',\"p,q\""),
            Is.EqualTo(new[] { "{a: 1, b: [2, 3]}", "'x,y'", "\"p,q\"" }));
        var combos = SweepGrid.Expand([new SweepAxis("a", ["1", "2"]), new SweepAxis("b", ["x", "y"])]);
        Assert.That(combos.Select(c => string.Join(" ", c.Select(kv => $"{kv.Key}={kv.Value}"))),
            Is.EqualTo(new[] { "a=1 b=x", "a=1 b=y", "a=2 b=x", "a=2 b=y" }), "the first axis varies slowest: a run's index is its place in this order");
    }

    [TestCase("optimizer.betas=[0.9,0.99", "--grid optimizer.betas=[0.9,0.99: '[' is not closed")]
    [TestCase("optimizer.betas=0.9,0.99]", "--grid optimizer.betas=0.9,0.99]: ']' at character 25 closes no bracket")]
    [TestCase("optimizer.name='sgd,adam", "--grid optimizer.name='sgd,adam: a single quote is not closed")]
    [TestCase("optimizer.lr=", "--grid optimizer.lr=: no values")]
    [TestCase("optimizer.lr", "--grid optimizer.lr: expected key=v1,v2,...")]
    public void A_malformed_grid_names_the_grid_option(string grid, string message)
    {
        var e = Assert.Throws<SweepException>(() => SweepGrid.Parse([grid]))!;
        Assert.That(e.Message, Does.StartWith(message));
    }

    [Test]
    public void A_grid_value_reaches_the_config_as_YAML_and_its_errors_name_the_grid()
    {
        var cfg = ConfigLoader.Parse("optimizer: {name: adam}", null, [new ConfigOverride("--grid", "optimizer.betas=[0.8,0.99]")], null);
        Assert.That(cfg.Optimizer.Betas, Is.EqualTo(new[] { 0.8, 0.99 }));
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, [new ConfigOverride("--grid", "optimizer.lr=fast")], null))!;
        Assert.That(e.Message, Does.StartWith("--grid optimizer.lr=fast: optimizer.lr: expected a number"));
        e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, [new ConfigOverride("--grid", "optimizer.lrr=1")], null))!;
        Assert.That(e.Message, Does.StartWith("--grid optimizer.lrr=1: unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"));
    }

    [Test]
    public void Another_optimizers_keys_in_the_file_are_ignored_with_a_warning_only_when_the_command_line_picks_the_optimizer()
    {
        const string sgdFile = "optimizer:\n  name: sgd\n  momentum: 0.9\n  nesterov: true\n";
        var warnings = new List<string>();
        var adam = ConfigLoader.Parse(sgdFile, "/configs/sgd.yaml", [new ConfigOverride("--grid", "optimizer.name=adam")], warnings.Add);
        Assert.That((adam.Optimizer.Name, adam.Optimizer.Momentum, adam.Optimizer.Nesterov), Is.EqualTo((OptimizerKind.Adam, 0.0, false)));
        Assert.That(warnings, Is.EqualTo(new[]
        {
            "/configs/sgd.yaml:3:13: optimizer.momentum: applies to sgd only; ignored where --grid sets optimizer.name to another optimizer",
            "/configs/sgd.yaml:4:13: optimizer.nesterov: applies to sgd only; ignored where --grid sets optimizer.name to another optimizer",
        }));
        var sgd = ConfigLoader.Parse(sgdFile, "/configs/sgd.yaml", [new ConfigOverride("--set", "optimizer.name=sgd")], warnings.Add);
        Assert.That(sgd.Optimizer.Momentum, Is.EqualTo(0.9), "keys that apply stay");
        Assert.That(warnings, Has.Count.EqualTo(2));

        // Inconsistent within the file, or within the command line: still an error.
        var inFile = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("optimizer: {name: adam, momentum: 0.9}", "/c.yaml", [], warnings.Add))!;
        Assert.That(inFile.Message, Does.Contain("optimizer.momentum: applies to sgd only"));
        var onLine = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null,
            [new ConfigOverride("--set", "optimizer.momentum=0.9"), new ConfigOverride("--grid", "optimizer.name=adam")], warnings.Add))!;
        Assert.That(onLine.Message, Does.StartWith("--set optimizer.momentum=0.9: optimizer.momentum: applies to sgd only"));
    }

    [Test]
    public void The_shard_comes_from_the_option_then_Slurm_then_a_Kubernetes_index()
    {
        SweepShard From(string? shard, int? shards, params (string, string)[] env) =>
            SweepShard.Resolve(shard, shards, name => env.FirstOrDefault(v => v.Item1 == name).Item2);
        Assert.That(From(null, null), Is.EqualTo(SweepShard.All));
        Assert.That(From("1/3", null, ("SLURM_ARRAY_TASK_ID", "0")), Is.EqualTo(new SweepShard(1, 3, "--shard 1/3")), "the option wins");
        Assert.That(From(null, null, ("SLURM_ARRAY_TASK_ID", "6"), ("SLURM_ARRAY_TASK_MIN", "4"), ("SLURM_ARRAY_TASK_COUNT", "3")),
            Is.EqualTo(new SweepShard(2, 3, "SLURM_ARRAY_TASK_ID=6")), "ids count from SLURM_ARRAY_TASK_MIN");
        Assert.That(From(null, null, ("SLURM_ARRAY_TASK_ID", "12"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_STEP", "2"), ("SLURM_ARRAY_TASK_COUNT", "3")).Index,
            Is.EqualTo(1), "--array=10-14:2");
        Assert.That(From(null, 4, ("JOB_COMPLETION_INDEX", "3")), Is.EqualTo(new SweepShard(3, 4, "JOB_COMPLETION_INDEX=3")));
        Assert.That(From(null, null, ("JOB_COMPLETION_INDEX", "0"), (SweepShard.ShardsVariable, "2")), Is.EqualTo(new SweepShard(0, 2, "JOB_COMPLETION_INDEX=0")));
        var shard = new SweepShard(1, 3);
        Assert.That(Enumerable.Range(0, 7).Where(shard.Owns), Is.EqualTo(new[] { 1, 4 }));
    }

    [TestCase("3/3", null, "--shard 3/3: shard 3 of 3 does not exist (shards are numbered 0 to 2)")]
    [TestCase("1", null, "--shard 1: expected K/N")]
    [TestCase("a/3", null, "--shard a/3: K 'a' is not an integer")]
    [TestCase("-1/3", null, "--shard -1/3: K must be >= 0, found -1")]
    [TestCase("0/0", null, "--shard 0/0: N must be >= 1, found 0")]
    [TestCase("0/20000", null, "--shard 0/20000: 20000 shards is more than a sweep's 10000 runs")]
    [TestCase("0/2", 2, "--shards 2: only with JOB_COMPLETION_INDEX")]
    [TestCase(null, 2, "--shards 2: only with JOB_COMPLETION_INDEX")]
    public void A_bad_shard_is_refused_naming_it(string? shard, int? shards, string message)
    {
        var e = Assert.Throws<SweepException>(() => SweepShard.Resolve(shard, shards, _ => null))!;
        Assert.That(e.Message, Does.StartWith(message));
        Assert.That(e.ExitCode, Is.EqualTo(2));
    }

    [Test]
    public void A_bad_shard_variable_is_refused_naming_it()
    {
        Assert.That(Assert.Throws<SweepException>(() => SweepShard.Resolve(null, null, n => n == "JOB_COMPLETION_INDEX" ? "1" : null))!.Message,
            Does.StartWith($"JOB_COMPLETION_INDEX=1 is set but the number of shards is not: pass --shards N (the Job's completions) or set {SweepShard.ShardsVariable}=N"));
        Assert.That(Assert.Throws<SweepException>(() => SweepShard.Resolve(null, null, n => n == "SLURM_ARRAY_TASK_ID" ? "1" : null))!.Message,
            Does.StartWith("SLURM_ARRAY_TASK_ID=1 is set but SLURM_ARRAY_TASK_COUNT is not"));
        Assert.That(Assert.Throws<SweepException>(() => SweepShard.Resolve(null, null, n => n switch
            {
                "SLURM_ARRAY_TASK_ID" => "7", "SLURM_ARRAY_TASK_MIN" => "0", "SLURM_ARRAY_TASK_COUNT" => "4", _ => null,
            }))!.Message, Does.StartWith("SLURM_ARRAY_TASK_ID=7: shard 7 of 4 does not exist"));
    }
}

/// <summary>
/// The sweep's resume, failure and shard policy through the library, with a stand-in for training that writes each
/// run's <c>summary.json</c> as a run ending that way would: what runs again, what is skipped, what stops the sweep.
/// </summary>
[TestFixture, Category("Tool")]
public sealed class SweepPolicyTests
{
    sealed class Runs(Func<double, RunStatus?> end)
    {
        public List<(double Lr, bool Resume, bool Force)> Calls { get; } = [];
        public List<string> Said { get; } = [];
        public List<string> Warned { get; } = [];

        public SweepHooks Hooks => new((cfg, path, options) =>
        {
            Calls.Add((cfg.Optimizer.Lr, options.Resume, options.Force));
            var status = end(cfg.Optimizer.Lr) ?? throw new IOException("disk full");
            RunDirectory.TryWriteSummaryOutside(path, new { Status = status.ToString().ToLowerInvariant() });
            return new RunOutcome(new TrainResult(status, [], [], -1), null!, path);
        }, new RunOptions(), Said.Add, Warned.Add);
    }

    [Test]
    public void Diverged_and_completed_runs_are_kept_failed_ones_resume_and_a_signal_stops_the_sweep()
    {
        var dir = TempDir.New("sweep-policy");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        SweepRequest Request(bool force = false, SweepShard? shard = null) =>
            new(cfg, [], ["optimizer.lr=0.1,0.2,0.3"], Path.Combine(dir, "sw"), force, shard ?? SweepShard.All);

        var first = new Runs(lr => lr switch { 0.1 => RunStatus.Diverged, 0.2 => null, _ => RunStatus.Completed });
        var sweep = Sweep.Run(Request(), first.Hooks);
        Assert.That(first.Calls.Select(c => c.Lr), Is.EqualTo(new[] { 0.1, 0.2, 0.3 }));
        Assert.That(sweep.Rows.Select(r => r.Status), Is.EqualTo(new[] { "diverged", "failed", "completed" }));
        Assert.That(sweep.NotCompleted, Is.EqualTo(2));
        Assert.That(first.Warned, Has.Some.EqualTo("optimizer.lr=0.2: failed: disk full"));

        var rerun = new Runs(_ => RunStatus.Completed);
        sweep = Sweep.Run(Request(), rerun.Hooks);
        Assert.That(rerun.Calls, Is.EqualTo(new[] { (0.2, true, false) }), "only the failed run trains again, resuming");
        Assert.That(rerun.Said, Is.EqualTo(new[] { "== optimizer.lr=0.1: diverged earlier, skipped", "== optimizer.lr=0.2 (resuming)", "== optimizer.lr=0.3: completed earlier, skipped" }));
        Assert.That(sweep.Rows.Select(r => r.Status), Is.EqualTo(new[] { "diverged", "completed", "completed" }));

        var forced = new Runs(_ => RunStatus.Completed);
        Sweep.Run(Request(force: true, shard: new SweepShard(1, 2)), forced.Hooks);
        Assert.That(forced.Calls, Is.EqualTo(new[] { (0.2, false, true) }), "--force trains this shard's runs (index 1 of 2: the second) from the start");

        var stopped = new Runs(_ => RunStatus.Interrupted);
        sweep = Sweep.Run(Request(force: true), stopped.Hooks);
        Assert.That((stopped.Calls.Count, sweep.Interrupted?.RunPath), Is.EqualTo((1, Path.Combine(dir, "sw", "optimizer.lr=0.1"))), "a signal stops the sweep after its run");
    }

    /// <summary>
    /// The first process records the sweep's spec in <c>sweep.json</c>; a process with the same spec joins (even with the
    /// base config at another path, as another machine mounts it); one whose base config, <c>--set</c> or <c>--grid</c>
    /// differs is refused naming the file and what differs, and nothing in the folder changes.
    /// </summary>
    [Test]
    public void A_sweep_with_another_spec_is_refused_and_the_same_spec_joins()
    {
        var dir = TempDir.New("sweep-spec");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var sw = Path.Combine(dir, "sw");
        SweepRequest Request(string config, string[] set, string grid = "optimizer.lr=0.1,0.2") => new(config, set, [grid], sw, false, SweepShard.All);
        var first = new Runs(_ => RunStatus.Completed);
        Sweep.Run(Request(cfg, ["train.epochs=1"]), first.Hooks);
        Assert.That(first.Calls, Has.Count.EqualTo(2));

        var elsewhere = Path.Combine(TempDir.New("other-mount"), "config.yaml");
        File.Copy(cfg, elsewhere);
        var joined = new Runs(_ => RunStatus.Completed);
        var sweep = Sweep.Run(Request(elsewhere, ["train.epochs=1"], "optimizer.lr= 0.1, 0.2"), joined.Hooks);
        Assert.That((joined.Calls.Count, sweep.Rows.Select(r => r.Status)), Is.EqualTo((0, new[] { "completed", "completed" })), "the same spec joins: its runs are done");
        Assert.That(File.ReadAllText(Path.Combine(sw, "sweep.md")), Does.Contain($"Base config: `{cfg}`").And.Contain("`--grid optimizer.lr=0.1,0.2` (all recorded in `sweep.json`)"),
            "sweep.md shows the recorded spec");

        var before = Tool.FileHashes(sw);
        var spec = Path.Combine(sw, SweepTable.SpecName);
        var edited = Tool.WriteConfig(TempDir.New("edited"), Tool.SmallConfig(trainLimit: 32));
        var refusals = new (SweepRequest Request, string Message)[]
        {
            (Request(cfg, ["train.epochs=2"]), $"{spec}: this folder holds a sweep with another spec: --set: --set train.epochs=2 here, --set train.epochs=1 there; nothing was written; allowed: "),
            (Request(cfg, []), "--set: no --set here, --set train.epochs=1 there;"),
            (Request(cfg, ["train.epochs=1"], "optimizer.lr=0.1,0.3"), "--grid: --grid optimizer.lr=0.1,0.3 here, --grid optimizer.lr=0.1,0.2 there;"),
            (Request(edited, ["train.epochs=1"]), $"base config: {edited} (sha256 {Tool.Sha(edited)[..12]}…) here, {cfg} (sha256 {Tool.Sha(cfg)[..12]}…) there;"),
        };
        foreach (var (request, message) in refusals)
        {
            var refused = new Runs(_ => RunStatus.Completed);
            var e = Assert.Throws<RunDirectoryException>(() => Sweep.Run(request, refused.Hooks));
            Assert.That(e!.Message, Does.Contain(message));
            Assert.That((refused.Calls.Count, Tool.FileHashes(sw)), Is.EqualTo((0, before)), "a refused sweep trains and writes nothing");
        }
    }

    /// <summary>
    /// A run whose folder another live process holds (a requeued shard racing its first attempt) is left to that process:
    /// not trained and not recorded as failed, whether the lock is seen before the run starts or taken just before
    /// this process opens the folder; the table shows it running, then its end once that process writes it.
    /// </summary>
    [Test]
    public void A_run_another_process_holds_is_left_to_it_never_recorded_as_failed()
    {
        var dir = TempDir.New("sweep-locked");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var sw = Path.Combine(dir, "sw");
        var request = new SweepRequest(cfg, [], ["optimizer.lr=0.1,0.2"], sw, false, SweepShard.All);
        Sweep.Run(request, new Runs(lr => lr == 0.2 ? null : RunStatus.Completed).Hooks); // 0.2 fails: a rerun would resume it
        var run = Path.Combine(sw, "optimizer.lr=0.2");
        var summary = Tool.Sha(Path.Combine(run, "summary.json"));

        SweepOutcome sweep;
        var rerun = new Runs(_ => RunStatus.Completed);
        using (var other = RunLock.TryOpen(Path.Combine(run, ".lock"), create: true)!) // the lock a live trainer holds
        {
            RunLock.Write(other);
            sweep = Sweep.Run(request, rerun.Hooks);
        }
        Assert.That(rerun.Calls, Is.Empty);
        Assert.That(rerun.Said, Has.Some.EqualTo($"== optimizer.lr=0.2: being trained by another process (it holds {Path.Combine(run, ".lock")}), skipped"));
        Assert.That((sweep.Rows[1].Status, sweep.Elsewhere, sweep.NotCompleted), Is.EqualTo(("running", new[] { 1 }, 0)), "left to the other process, not counted against this one");
        Assert.That(File.ReadAllText(Path.Combine(sw, "sweep.csv")), Does.Contain(",running,"));
        Assert.That(Tool.Sha(Path.Combine(run, "summary.json")), Is.EqualTo(summary), "the run's record is the other process's to write");

        // The other process takes the lock after this one looked and before it opens the run folder.
        var warned = new List<string>();
        var racing = new SweepHooks((cfg, path, options) =>
        {
            using var other = RunLock.TryOpen(Path.Combine(path, ".lock"), create: true)!;
            RunLock.Write(other);
            using var opened = RunDirectory.Open(path, options.Resume, options.Force);
            Assert.Fail("the folder opened although another process held its lock");
            return null!;
        }, new RunOptions(), _ => { }, warned.Add);
        sweep = Sweep.Run(request, racing);
        Assert.That((warned, sweep.Elsewhere, sweep.NotCompleted), Is.EqualTo((new string[0], new[] { 1 }, 0)), "no failure is recorded or reported");
        Assert.That(Tool.Sha(Path.Combine(run, "summary.json")), Is.EqualTo(summary));

        // That process ends its run (as TrainingRun does: summary, then the lock released); the next rebuild shows it.
        RunDirectory.TryWriteSummaryOutside(run, new { Status = "completed" });
        var done = new Runs(_ => RunStatus.Completed);
        sweep = Sweep.Run(request, done.Hooks);
        Assert.That((done.Calls.Count, sweep.Rows[1].Status), Is.EqualTo((0, "completed")));
    }
}

/// <summary>Sweeps through the real tool: shards of one grid in parallel processes, and bad shards.</summary>
[TestFixture, Category("Tool")]
public sealed class SweepShardTests
{
    /// <summary>
    /// Three shard processes at once into one folder, each given its shard another way (option, Slurm array, Kubernetes
    /// index): every run is trained by exactly one of them, and the tables end complete. The grid's values are lists,
    /// and <c>--set</c> switches the optimizer of a base config written for SGD with momentum. One run per shard, one
    /// thread each: the cost is three tool starts and three two-step runs.
    /// </summary>
    [Test]
    public void Three_shards_at_once_fill_one_complete_table()
    {
        var dir = TempDir.New("shards");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16).Replace("name: adam", "name: sgd\n  momentum: 0.9"));
        var sw = Path.Combine(dir, "sw");
        string[] grid = ["optimizer.betas=[0.9,0.99],[0.8,0.99],[0.5,0.9]"];
        string[] args = ["sweep", cfg, "--set", "optimizer.name=adam", "--set", "threads=1", "--grid", grid[0], "--out", sw];
        var shards = new[]
        {
            Tool.Start(dir, [.. args, "--shard", "0/3"]),
            Tool.Start(dir, args, new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "11", ["SLURM_ARRAY_TASK_MIN"] = "10", ["SLURM_ARRAY_TASK_COUNT"] = "3" }),
            Tool.Start(dir, args, new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "2", [SweepShard.ShardsVariable] = "3" }),
        };
        var results = shards.Select(p => p.WaitForExit()).ToList();
        foreach (var p in shards) p.Dispose();
        for (int k = 0; k < 3; k++)
        {
            Assert.That(results[k].ExitCode, Is.EqualTo(0), $"shard {k}\n{results[k]}");
            var warnings = results[k].Stderr.Split('\n').Where(l => l.StartsWith("warning: ")).ToList();
            Assert.That(warnings, Has.Count.EqualTo(1), $"one warning for the file's momentum\n{results[k]}");
            Assert.That(warnings[0], Does.Contain("optimizer.momentum: applies to sgd only; ignored where --set sets optimizer.name to another optimizer"));
        }

        var names = SweepGrid.Expand(SweepGrid.Parse(grid)).Select(SweepTable.FolderName).ToList();
        for (int i = 0; i < names.Count; i++)
            Assert.That(Enumerable.Range(0, 3).Where(k => results[k].Stdout.Split('\n').Contains($"== {names[i]}")), Is.EqualTo(new[] { i % 3 }),
                $"{names[i]} is trained by shard {i % 3} only");

        var csv = File.ReadAllLines(Path.Combine(sw, "sweep.csv"));
        Assert.That(csv[0], Is.EqualTo("optimizer.betas,status,final_test_accuracy,best_test_accuracy,final_train_loss,train_seconds,run"));
        // The run folder, last and quoted (the names hold commas), follows train_seconds.
        Assert.That(csv.Skip(1).Select(l => l[(l.LastIndexOf(",\"", StringComparison.Ordinal) + 2)..^1]), Is.EqualTo(names), "one row per run, in grid order");
        Assert.That(csv.Skip(1).Select(l => l.Contains(",completed,")), Is.All.True, string.Join("\n", csv));
        var md = File.ReadAllText(Path.Combine(sw, "sweep.md"));
        Assert.That(md, Does.Contain($"Base config: `{cfg}` (sha256 `{Tool.Sha(cfg)}`)").And.Contain("`--set optimizer.name=adam` `--set threads=1`")
            .And.Contain("3 of 3 runs completed"), md);

        var adam = ConfigLoader.Load(Path.Combine(sw, names[1], "config.yaml"));
        Assert.That((adam.Optimizer.Name, adam.Optimizer.Momentum, adam.Optimizer.Betas[0], adam.Optimizer.Betas[1]), Is.EqualTo((OptimizerKind.Adam, 0.0, 0.8, 0.99)),
            "the list value from --grid, and the file's momentum ignored for adam");
        using var png = SKBitmap.Decode(Path.Combine(sw, "sweep.png"));
        Assert.That((png.Width, png.Height), Is.EqualTo((1000, 500)));
    }

    /// <summary>
    /// Two processes at once on a one-run grid (a requeued shard and its first attempt): one trains the run, the other
    /// leaves it (seen held, or lost the race for its lock); neither records or reports a failure, both exit 0, and
    /// the table ends with the run completed.
    /// </summary>
    [Test]
    public void Two_processes_on_one_run_train_it_once_and_neither_records_a_failure()
    {
        var dir = TempDir.New("requeued");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16, epochs: 2));
        var sw = Path.Combine(dir, "sw");
        string[] args = ["sweep", cfg, "--set", "threads=1", "--grid", "seed=0", "--out", sw];
        var both = new[] { Tool.Start(dir, args), Tool.Start(dir, args) };
        var results = both.Select(p => p.WaitForExit()).ToList();
        foreach (var p in both) p.Dispose();
        foreach (var r in results)
        {
            Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
            Assert.That(r.Stderr, Does.Not.Contain("failed"), r.ToString());
        }
        bool Left(ToolResult r) => r.Stdout.Contains("== seed=0: being trained by another process") || r.Stdout.Contains("== seed=0: completed earlier, skipped");
        Assert.That(results.Count(Left), Is.EqualTo(1), string.Join("\n", results));
        Assert.That(File.ReadAllLines(Path.Combine(sw, "sweep.csv"))[1], Does.StartWith("0,completed,"));
        Assert.That(File.ReadAllText(Path.Combine(sw, "seed=0", "summary.json")), Does.Contain("\"status\": \"completed\""));
    }

    /// <summary>A shard started with another <c>--set</c> than the sweep in its <c>--out</c>: one line, exit 2, nothing written.</summary>
    [Test]
    public void A_shard_with_another_set_gets_one_line_and_exit_2_and_writes_nothing()
    {
        var dir = TempDir.New("spec-shard");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var sw = Path.Combine(dir, "sw");
        // The sweep's first shard, through the library with a stand-in for training (no process, no training).
        Sweep.Run(new SweepRequest(cfg, ["threads=1"], ["seed=0,1"], sw, false, new SweepShard(0, 2)), new SweepHooks(
            (c, path, o) => { RunDirectory.TryWriteSummaryOutside(path, new { Status = "completed" }); return new RunOutcome(new TrainResult(RunStatus.Completed, [], [], -1), null!, path); },
            new RunOptions(), _ => { }, _ => { }));
        var before = Tool.FileHashes(sw);
        var r = Tool.Run(dir, ["sweep", cfg, "--set", "threads=2", "--grid", "seed=0,1", "--shard", "1/2", "--out", sw]);
        Tool.AssertOneErrorLine(r, 2, $"{Path.Combine(sw, "sweep.json")}: this folder holds a sweep with another spec: --set: --set threads=2 here, --set threads=1 there; nothing was written");
        Assert.That(Tool.FileHashes(sw), Is.EqualTo(before));
    }

    [Test]
    public void A_bad_shard_gets_one_line_and_exit_2_and_writes_nothing()
    {
        var dir = TempDir.New("badshard");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var sw = Path.Combine(dir, "sw");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "seed=0,1", "--shard", "2/2", "--out", sw]), 2,
            "--shard 2/2: shard 2 of 2 does not exist (shards are numbered 0 to 1); allowed: K/N with 0 <= K < N");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "seed=0,1", "--out", sw], new() { ["JOB_COMPLETION_INDEX"] = "1" }), 2,
            "JOB_COMPLETION_INDEX=1 is set but the number of shards is not: pass --shards N");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "seed=0,1", "--shard", "0/2"]), 2,
            "--shard 0/2: a sharded sweep needs --out");
        Assert.That(Directory.Exists(sw), Is.False);
    }
}
