using System.Security.Cryptography;
using ResnetMnist.Config;
using ResnetMnist.Core;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Training;

namespace ResnetMnist.Sweeps;

/// <summary>What a sweep is asked to do: the command line of <c>sweep</c>, parsed.</summary>
/// <param name="Config">Base config file; null: the packaged quickstart, as <c>train</c> without a config.</param>
/// <param name="Set"><c>--set</c> overrides applied to every run (before the grid's values).</param>
/// <param name="Grid">The <c>--grid key=v1,v2</c> options (<see cref="SweepGrid"/>).</param>
/// <param name="Out">The sweep folder; null: <c>runs/sweep-yyyyMMdd-HHmmss</c> (not with shards: they must share one).</param>
/// <param name="Force">Train this shard's runs again from the start, whatever they hold.</param>
/// <param name="Shard">This process's share of the grid (<see cref="SweepShard.Resolve"/>).</param>
public sealed record SweepRequest(string? Config, IReadOnlyList<string> Set, IReadOnlyList<string> Grid, string? Out, bool Force, SweepShard Shard);

/// <summary>How a sweep trains one run and reports what it does.</summary>
/// <param name="Train">Trains one run (the tool wraps <see cref="TrainingRun.Train"/> in its progress display and Ctrl-C handling).</param>
/// <param name="Options">Recorded in each run's <c>summary.json</c> (command line, version); resume/force are set per run.</param>
/// <param name="Say">A line of progress for standard output.</param>
/// <param name="Warn">A warning or a run's failure, one line for standard error.</param>
public sealed record SweepHooks(Func<TrainingConfig, string, RunOptions, RunOutcome> Train, RunOptions Options, Action<string> Say, Action<string> Warn);

/// <summary>What a sweep did.</summary>
/// <param name="Root">The sweep folder.</param>
/// <param name="Rows">Every run of the grid as the tables show it (all shards'), in grid order.</param>
/// <param name="Mine">The grid indices this process was to run.</param>
/// <param name="Interrupted">The run a signal stopped (the sweep stopped with it), else null.</param>
/// <param name="Elsewhere">The grid indices of this process's runs that another live process was training (it held
/// their lock): left to it, and reported by it.</param>
public sealed record SweepOutcome(string Root, IReadOnlyList<SweepRow> Rows, IReadOnlyList<int> Mine, RunOutcome? Interrupted, IReadOnlyList<int> Elsewhere)
{
    /// <summary>This process's runs that did not complete (diverged, failed, interrupted), not counting those left to another process.</summary>
    public int NotCompleted => Mine.Count(i => Rows[i].Status != "completed" && !Elsewhere.Contains(i));

    /// <summary><c>sweep.md</c>.</summary>
    public string TableFile => Path.Combine(Root, "sweep.md");
}

/// <summary>
/// The "sweep" use case: expand the grid and validate every combination's config before anything is written; claim
/// the sweep folder; then run this shard's combinations in grid order, one run folder each
/// (<see cref="SweepTable.FolderName"/>). Failure policy: a run that diverges or fails with an error is recorded (its
/// <c>summary.json</c> status and problem) and the sweep goes on; a signal stops the sweep after the interrupted run's
/// checkpoint. Resume policy: run again into the same folder, a sweep skips the runs that finished (completed or
/// diverged: training them again gives the same result), resumes interrupted and failed ones from their last
/// checkpoint, and starts over those that kept none; <see cref="SweepRequest.Force"/> trains them all again. A run
/// whose folder another live process holds (a requeued shard racing its first attempt) is left to that process: not
/// trained, not recorded, shown as <c>running</c> until that process writes its end.
/// The sweep's spec (base config, <c>--set</c>, <c>--grid</c>) is recorded in the folder once; a process whose spec
/// differs is refused before it writes anything (<see cref="SweepTable.Join"/>).
/// The tables are rebuilt from the runs' records after every run (<see cref="SweepTable.Rebuild"/>), so shards on
/// several machines can share one folder.
/// </summary>
public static class Sweep
{
    /// <summary>Statuses a rerun keeps: the run finished, and training it again would give the same result.</summary>
    public static readonly IReadOnlyList<string> Finished = ["completed", "diverged"];

    public static SweepOutcome Run(SweepRequest request, SweepHooks hooks)
    {
        var axes = SweepGrid.Parse(request.Grid);
        var combos = SweepGrid.Expand(axes);
        if (request.Shard.Count > 1 && request.Out is null)
            throw new SweepException($"{request.Shard.Source}: a sharded sweep needs --out, the folder every shard writes into (shared by all machines)");
        var warnings = new List<string>();
        void Warn(string w) { if (!warnings.Contains(w)) { warnings.Add(w); hooks.Warn($"warning: {w}"); } }
        var configs = combos.Select(c => Load(request, c, Warn)).ToList(); // every combination validated before anything is written
        var baseConfig = Path.GetFullPath(request.Config ?? PackagedFiles.Quickstart!);
        var root = OutputFolder.Claim(request.Out ?? Path.Combine("runs", $"sweep-{DateTime.Now:yyyyMMdd-HHmmss}"), OutputFolder.SweepMarker, "a sweep folder", "--out");
        var folders = combos.Select(SweepTable.FolderName).ToList();
        if (folders.Distinct(StringComparer.Ordinal).Count() != folders.Count)
            throw new SweepException("sweep: two --grid combinations map to the same run folder name; use values that differ in letters or digits");
        var header = SweepTable.Join(root, new SweepHeader(axes.Select(a => a.Key).ToList(), baseConfig, Sha256(baseConfig), request.Set,
            axes.Select(a => $"{a.Key}={string.Join(",", a.Values)}").ToList()));
        var runs = combos.Select((c, i) => (c, folders[i])).ToList();
        var mine = Enumerable.Range(0, combos.Count).Where(request.Shard.Owns).ToList();
        if (request.Shard.Count > 1)
            hooks.Say($"shard {request.Shard.Index} of {request.Shard.Count} ({request.Shard.Source}): {mine.Count} of the grid's {combos.Count} runs");
        var rows = SweepTable.Rebuild(root, header, runs);
        var elsewhere = new List<int>();
        foreach (var i in mine)
        {
            // Read now, not at the last rebuild: another process may have finished or taken the run meanwhile.
            var status = SweepRow.FromSummary(combos[i], root, folders[i]).Status;
            var outcome = RunOne(request, hooks, configs[i], Path.Combine(root, folders[i]), folders[i], status, out bool leftToOther);
            if (leftToOther) elsewhere.Add(i);
            rows = SweepTable.Rebuild(root, header, runs);
            if (outcome?.Result.Status == RunStatus.Interrupted) return new SweepOutcome(root, rows, mine, outcome, elsewhere);
        }
        return new SweepOutcome(root, rows, mine, null, elsewhere);
    }

    static TrainingConfig Load(SweepRequest request, IReadOnlyList<(string Key, string Value)> combo, Action<string> warn)
    {
        var overrides = ConfigOverride.Set(request.Set).Concat(combo.Select(kv => new ConfigOverride("--grid", $"{kv.Key}={kv.Value}")));
        return ConfigLoader.LoadOrQuickstart(request.Config, overrides, warn);
    }

    /// <summary>One run by the policy above; null when it was skipped or failed with an error.</summary>
    /// <param name="leftToOther">Set when another live process holds the run's folder: the run is its, not this process's.</param>
    static RunOutcome? RunOne(SweepRequest request, SweepHooks hooks, TrainingConfig cfg, string runPath, string name, string status, out bool leftToOther)
    {
        leftToOther = false;
        if (status == "running" || (!request.Force && Finished.Contains(status)))
        {
            leftToOther = status == "running";
            hooks.Say(leftToOther ? BeingTrained(name, runPath, RunDirectory.LockHolder(runPath)) : $"== {name}: {status} earlier, skipped");
            return null;
        }
        // A run that stopped earlier resumes; one that kept no resumable checkpoint (train.save: best or none) starts over.
        bool earlier = !request.Force && RunDirectory.IsRunFolder(runPath);
        bool resumable = cfg.Train.Save is SaveKind.Both or SaveKind.Last;
        bool resume = earlier && resumable, force = request.Force || (earlier && !resumable);
        var options = hooks.Options with { Resume = resume, Force = force };
        hooks.Say(resume ? $"== {name} (resuming)" : $"== {name}");
        var started = DateTime.UtcNow;
        try
        {
            var outcome = hooks.Train(cfg, runPath, options);
            if (outcome.Result.Status == RunStatus.Diverged) hooks.Warn($"{name}: diverged: {outcome.Result.Problem}");
            return outcome;
        }
        catch (RunFolderLockedException e)
        {
            // Taken by another process between the check above and this one's start: its run, not a failure of this one.
            leftToOther = true;
            hooks.Say(BeingTrained(name, runPath, e.Pid));
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            string problem = Printable.OneLine(e.Message);
            hooks.Warn($"{name}: failed: {problem}");
            TrainingRun.RecordFailure(cfg, runPath, problem, started, options);
            return null;
        }
    }

    static string BeingTrained(string name, string runPath, int? pid) =>
        $"== {name}: being trained by another {(pid is > 0 ? $"process ({pid})" : "process")} (it holds {Path.Combine(runPath, ".lock")}), skipped";

    static string Sha256(string file)
    {
        using var f = InputFiles.OpenRead(file, "a YAML config file", ConfigLoader.MaxConfigBytes, m => new ConfigException($"{file}: {m}"));
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
