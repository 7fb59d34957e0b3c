using System.ComponentModel;
using System.Globalization;
using System.Text;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class SweepCommand : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[CONFIG]"), Description("Base YAML config. Without it: the packaged quickstart, as train without a config.")]
        public string? Config { get; init; }

        [CommandOption("--grid <KEY=V1,V2>"), Description("A key and its values; one run per combination of all --grid options.")]
        public string[] Grid { get; init; } = [];

        [CommandOption("--out <SWEEP_DIR>"), Description("Sweep folder. Default: runs/sweep-<yyyyMMdd-HHmmss>.")]
        public string? Out { get; init; }

        [CommandOption("--force"), Description("Run every combination again, overwriting run folders (without it, a rerun with the same --out skips completed runs and resumes the others).")]
        public bool Force { get; init; }
    }

    /// <summary>Most runs one sweep may have: 10,000.</summary>
    public const int MaxRuns = 10_000;

    static TrainingConfig Load(string? config, IEnumerable<string> set) =>
        ConfigLoader.LoadOrQuickstart(config, set);

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        if (s.Grid.Length == 0) throw new UsageException("sweep: give at least one --grid key=v1,v2");
        var axes = s.Grid.Select(g =>
        {
            int eq = g.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--grid {g}: expected key=v1,v2,...");
            return (Key: g[..eq], Values: g[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }).ToList();
        // The size first: a grid is expanded (and every combination validated) only when it is small enough to run.
        long count = 1;
        foreach (var a in axes) count = Math.Min(count * Math.Max(a.Values.Length, 1), MaxRuns + 1L);
        if (count > MaxRuns)
            throw new UsageException($"--grid: {string.Join(" × ", axes.Select(a => a.Values.Length.ToString(CultureInfo.InvariantCulture)))} combinations " +
                                     $"is more than {MaxRuns.ToString("N0", CultureInfo.InvariantCulture)} runs; allowed: at most {MaxRuns.ToString("N0", CultureInfo.InvariantCulture)} runs per sweep (split it into several sweeps)");
        IEnumerable<List<(string Key, string Value)>> combos = [[]];
        foreach (var a in axes) combos = combos.SelectMany(c => a.Values.Select(v => new List<(string, string)>(c) { (a.Key, v) })).ToList();

        var configs = combos.Select(c => (Combo: c, Config: Load(s.Config, s.Set.Concat(c.Select(kv => $"{kv.Key}={kv.Value}"))))).ToList(); // validate all first
        var root = OutputFolder.Claim(s.Out ?? Path.Combine("runs", $"sweep-{DateTime.Now:yyyyMMdd-HHmmss}"), OutputFolder.SweepMarker, "a sweep folder", "--out");
        var keys = axes.Select(a => a.Key).ToList();
        var folders = configs.Select(c => SweepTable.FolderName(c.Combo)).ToList();
        if (folders.Distinct(StringComparer.Ordinal).Count() != folders.Count)
            throw new UsageException("sweep: two --grid combinations map to the same run folder name; use values that differ in letters or digits");
        var rows = configs.Select((c, i) => SweepRow.FromSummary(c.Combo, root, folders[i])).ToList();
        // Runs that completed in an earlier invocation with this --out are kept; the others run (or resume) now.
        if (s.Force) rows = rows.Select(r => r with { Status = "pending", Problem = null, FinalTestAccuracy = null, BestTestAccuracy = null, FinalTrainLoss = null, TrainSeconds = null }).ToList();
        SweepTable.Write(root, keys, rows, s.Config ?? "the packaged quickstart");
        using var signals = new InterruptSignals();
        for (int i = 0; i < configs.Count; i++)
        {
            var (combo, cfg) = configs[i];
            var runPath = Path.Combine(root, folders[i]);
            if (rows[i].Status == "completed")
            {
                Terminal.Out($"== {folders[i]}: completed earlier, skipped");
                continue;
            }
            // A run that stopped earlier resumes; one that kept no resumable checkpoint (train.save: best or none) starts over.
            bool earlier = !s.Force && RunDirectory.IsRunFolder(runPath);
            bool resumable = cfg.Train.Save is SaveKind.Both or SaveKind.Last;
            bool resume = earlier && resumable, force = s.Force || (earlier && !resumable);
            Terminal.Out(resume ? $"== {folders[i]} (resuming)" : $"== {folders[i]}");
            var started = DateTime.UtcNow;
            try
            {
                var (result, summary, path) = Runs.Execute(cfg, runPath, resume, force, quiet: false, signals);
                rows[i] = SweepRow.FromSummary(combo, root, folders[i]);
                if (result.Status == RunStatus.Interrupted)
                {
                    SweepTable.Write(root, keys, rows, s.Config ?? "the packaged quickstart");
                    Runs.ReportInterrupted(result, path);
                    Terminal.Err($"sweep interrupted; run the same sweep command again to continue it ({Path.Combine(root, "sweep.md")})");
                    return signals.ExitCode;
                }
                if (result.Status == RunStatus.Diverged) Terminal.Err($"{folders[i]}: diverged: {result.Problem}");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                string problem = ErrorHandling.OneLine(e.Message);
                Terminal.Err($"{folders[i]}: failed: {problem}");
                var summary = TrainingRun.RecordFailure(cfg, runPath, problem, started, Runs.Options(resume, force));
                rows[i] = new SweepRow(combo, folders[i], "failed", problem, summary.FinalTestAccuracy, summary.BestTestAccuracy, summary.FinalTrainLoss,
                    summary.TrainSeconds);
            }
            SweepTable.Write(root, keys, rows, s.Config ?? "the packaged quickstart");
        }
        SweepTable.Write(root, keys, rows, s.Config ?? "the packaged quickstart");
        Terminal.OutLines(RunDirectory.ReadRecord(Path.Combine(root, "sweep.md"), "the sweep's table"));
        int failed = rows.Count(r => r.Status != "completed");
        if (failed > 0) Terminal.Err($"{failed} of {rows.Count} runs did not complete; see {Path.Combine(root, "sweep.md")}");
        return failed == 0 ? ErrorHandling.Ok : ErrorHandling.Failure;
    }
}
