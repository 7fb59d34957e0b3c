using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ResnetMnist.Outputs;

/// <summary>One run of a sweep as its tables show it: the grid values, how it ended and what it measured.</summary>
/// <param name="Status"><c>completed</c>, <c>diverged</c>, <c>interrupted</c>, <c>failed</c> (an error before or during the run),
/// <c>running</c> (a live process holds the run folder's lock) or <c>pending</c>.</param>
/// <param name="Folder">The run folder's name inside the sweep folder.</param>
public sealed record SweepRow(IReadOnlyList<(string Key, string Value)> Combo, string Folder, string Status, string? Problem = null,
    double? FinalTestAccuracy = null, double? BestTestAccuracy = null, double? FinalTrainLoss = null, double? TrainSeconds = null)
{
    /// <summary>
    /// The row of a run folder: <c>running</c> while a live process holds its lock (whatever an earlier attempt's
    /// <c>summary.json</c> says), else from its <c>summary.json</c>; <c>pending</c> when there is none (or it cannot be read).
    /// </summary>
    public static SweepRow FromSummary(IReadOnlyList<(string Key, string Value)> combo, string sweepRoot, string folder)
    {
        if (RunDirectory.LockHolder(Path.Combine(sweepRoot, folder)) is not null) return new SweepRow(combo, folder, "running");
        var file = Path.Combine(sweepRoot, folder, "summary.json");
        if (!File.Exists(file)) return new SweepRow(combo, folder, "pending");
        try
        {
            using var doc = JsonDocument.Parse(RunDirectory.ReadRecord(file, "a summary.json of this tool"));
            var r = doc.RootElement;
            double? D(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
            string? S(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return new SweepRow(combo, folder, S("status") ?? "pending", S("problem"), D("final_test_accuracy"), D("best_test_accuracy"),
                D("final_train_loss"), D("train_seconds"));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return new SweepRow(combo, folder, "pending");
        }
    }
}

/// <summary>
/// A sweep's spec: where its runs got their config. The first process to run a sweep into a folder records it there
/// (<see cref="SweepTable.SpecName"/>); every later one (a shard, a rerun) must have the same
/// (<see cref="SweepTable.Join"/>), and <c>sweep.md</c> shows the recorded one.
/// </summary>
/// <param name="Keys">The grid's keys, in <c>--grid</c> order.</param>
/// <param name="BaseConfig">The base config file's full path (as the first process saw it; not compared: machines mount files at different paths).</param>
/// <param name="BaseConfigSha256">Its sha256 (hex), so that a later edit of the file shows.</param>
/// <param name="Set">The <c>--set</c> overrides applied to every run, as given.</param>
/// <param name="Grid">The <c>--grid</c> options as parsed: <c>key=v1,v2</c>, values trimmed, in order.</param>
public sealed record SweepHeader(IReadOnlyList<string> Keys, string BaseConfig, string BaseConfigSha256, IReadOnlyList<string> Set, IReadOnlyList<string> Grid)
{
    /// <summary>What differs between this spec and <paramref name="recorded"/>, one phrase each; empty when they are the same sweep.</summary>
    public IReadOnlyList<string> Differences(SweepHeader recorded)
    {
        static string Options(string option, IReadOnlyList<string> values) =>
            values.Count == 0 ? $"no {option}" : string.Join(" ", values.Select(v => $"{option} {v}"));
        var d = new List<string>();
        if (BaseConfigSha256 != recorded.BaseConfigSha256)
            d.Add($"base config: {BaseConfig} (sha256 {BaseConfigSha256[..12]}…) here, {recorded.BaseConfig} (sha256 {recorded.BaseConfigSha256[..Math.Min(12, recorded.BaseConfigSha256.Length)]}…) there");
        if (!Set.SequenceEqual(recorded.Set, StringComparer.Ordinal)) d.Add($"--set: {Options("--set", Set)} here, {Options("--set", recorded.Set)} there");
        if (!Grid.SequenceEqual(recorded.Grid, StringComparer.Ordinal)) d.Add($"--grid: {Options("--grid", Grid)} here, {Options("--grid", recorded.Grid)} there");
        return d;
    }
}

/// <summary>
/// A sweep's run folders and its tables, <c>sweep.md</c> and <c>sweep.csv</c> (one row per run: every grid key,
/// status, final and best test accuracy, final train loss, train seconds, run folder), and <c>sweep.png</c> (the runs'
/// loss curves), rebuilt from the runs' records after every run so that they are live.
/// </summary>
public static class SweepTable
{
    /// <summary>
    /// The run folder of one combination: <c>key=value</c> per axis, joined with <c>_</c>, made path-safe: characters
    /// other than letters, digits and <c>. + - , _</c> become <c>-</c>, and no name starts with <c>.</c> or <c>-</c>.
    /// </summary>
    public static string FolderName(IEnumerable<(string Key, string Value)> combo)
    {
        var name = string.Join("_", combo.Select(kv => Safe(kv.Key) + "=" + Safe(kv.Value)));
        name = name.TrimStart('.', '-');
        if (name.Length == 0) name = "run";
        return name.Length > 200 ? name[..200] : name;
    }

    static string Safe(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in s) b.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-' or ',' or '_' ? c : '-');
        var r = b.ToString();
        return r is "." or ".." ? r.Replace('.', '-') : r;
    }

    /// <summary>The sweep's spec (<see cref="SweepHeader"/>), recorded once in the sweep folder as JSON.</summary>
    public const string SpecName = "sweep.json";

    static readonly JsonSerializerOptions SpecJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>
    /// Joins the sweep in <paramref name="root"/>: records <paramref name="spec"/> as its <see cref="SpecName"/> when it has
    /// none, and returns the recorded spec (the one <c>sweep.md</c> shows). A spec that differs from the recorded one (base
    /// config sha256, <c>--set</c>, <c>--grid</c>) is refused: a <see cref="RunDirectoryException"/> naming the file and what
    /// differs, and nothing is written. Under <see cref="TableLockName"/>, so that of shards starting at once one records
    /// and the others compare.
    /// </summary>
    public static SweepHeader Join(string root, SweepHeader spec)
    {
        using var turn = TakeTurn(Path.Combine(root, TableLockName));
        var file = Path.Combine(root, SpecName);
        if (!File.Exists(file) && new FileInfo(file).LinkTarget is null)
        {
            AtomicFile.WriteAllText(file, JsonSerializer.Serialize(spec, SpecJson) + "\n");
            return spec;
        }
        SweepHeader? recorded;
        try { recorded = JsonSerializer.Deserialize<SweepHeader>(RunDirectory.ReadRecord(file, "a sweep.json of this tool"), SpecJson); }
        catch (JsonException e) { throw new RunDirectoryException($"{file}: not a sweep.json of this tool ({Printable.OneLine(e.Message)}); restore it, or pick another --out"); }
        if (recorded is null || recorded.Keys is null || recorded.BaseConfig is null || recorded.BaseConfigSha256 is null || recorded.Set is null || recorded.Grid is null)
            throw new RunDirectoryException($"{file}: not a sweep.json of this tool (a key is missing); restore it, or pick another --out");
        var differences = spec.Differences(recorded);
        if (differences.Count > 0)
            throw new RunDirectoryException($"{file}: this folder holds a sweep with another spec: {string.Join("; ", differences)}; nothing was written; " +
                                            "allowed: the base config, --set and --grid that sweep.json records (a shard of that sweep), or another --out");
        return recorded;
    }

    /// <summary>The lock file that orders table rebuilds of processes sharing a sweep folder (never removed: waiters hold it open).</summary>
    public const string TableLockName = ".sweep.lock";

    /// <summary>Most runs drawn in <c>sweep.png</c> (the first ones in grid order): beyond that a legend cannot be read.</summary>
    public const int MaxPlotted = 24;

    /// <summary>
    /// Rebuilds <c>sweep.csv</c>, <c>sweep.md</c> and <c>sweep.png</c> from the runs' own records (<c>summary.json</c>,
    /// <c>steps.csv</c>), whoever wrote them: several processes (the shards of a sweep) may run the grid into one folder.
    /// Rebuilds take turns under <see cref="TableLockName"/>, and each reads the records after taking it, so the last
    /// rebuild sees every run that finished before it: the tables end complete. Returns the rows, in grid order.
    /// </summary>
    public static IReadOnlyList<SweepRow> Rebuild(string root, SweepHeader header, IReadOnlyList<(IReadOnlyList<(string Key, string Value)> Combo, string Folder)> runs)
    {
        using var turn = TakeTurn(Path.Combine(root, TableLockName));
        var rows = runs.Select(r => SweepRow.FromSummary(r.Combo, root, r.Folder)).ToList();
        Write(root, header, rows);
        WritePlot(root, header, rows);
        return rows;
    }

    /// <summary>Waits for the table lock (held for the milliseconds a rebuild takes), polling every 20 ms.</summary>
    static FileStream TakeTurn(string lockPath)
    {
        while (true)
        {
            if (RunLock.TryOpen(lockPath, create: true) is FileStream held) return held;
            Thread.Sleep(20);
        }
    }

    /// <summary>Rewrites <c>sweep.md</c> and <c>sweep.csv</c> in <paramref name="root"/>.</summary>
    public static void Write(string root, SweepHeader header, IReadOnlyList<SweepRow> rows)
    {
        var keys = header.Keys;
        static string N(double? v, string format) => v is double d && double.IsFinite(d) ? d.ToString(format, CultureInfo.InvariantCulture) : "";
        var csv = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        csv.WriteLine(string.Join(",", keys.Select(Csv).Concat(["status", "final_test_accuracy", "best_test_accuracy", "final_train_loss", "train_seconds", "run"])));
        foreach (var r in rows)
            csv.WriteLine(string.Join(",", r.Combo.Select(kv => Csv(kv.Value)).Concat([r.Status, N(r.FinalTestAccuracy, "R"), N(r.BestTestAccuracy, "R"),
                N(r.FinalTrainLoss, "R"), N(r.TrainSeconds, "F3"), Csv(r.Folder)])));
        AtomicFile.WriteAllText(Path.Combine(root, "sweep.csv"), csv.ToString());

        var md = new StringBuilder();
        md.AppendLine($"# Sweep over {string.Join(", ", keys)}");
        md.AppendLine();
        md.AppendLine($"Base config: `{Md(header.BaseConfig)}` (sha256 `{header.BaseConfigSha256}`). " +
                      $"Overrides for every run: {(header.Set.Count == 0 ? "none" : string.Join(" ", header.Set.Select(o => $"`--set {Md(o)}`")))}. " +
                      $"Grid: {string.Join(" ", header.Grid.Select(g => $"`--grid {Md(g)}`"))} (all recorded in `{SpecName}`).");
        md.AppendLine();
        md.AppendLine($"{rows.Count(r => r.Status == "completed")} of {rows.Count} runs completed. " +
                      "Final-epoch train loss (mean of the epoch's batch losses), final and best test accuracy, training time; `sweep.csv` holds the same rows.");
        md.AppendLine();
        md.AppendLine($"| {string.Join(" | ", keys.Select(Md))} | status | final train loss | test accuracy (%) | best test accuracy (%) | train time (s) | run |");
        md.AppendLine($"|{string.Concat(keys.Select(_ => "---|"))}---|---:|---:|---:|---:|---|");
        foreach (var r in rows)
            md.AppendLine($"| {string.Join(" | ", r.Combo.Select(kv => Md(kv.Value)))} | {r.Status} | {N(r.FinalTrainLoss, "F4")} | {N(r.FinalTestAccuracy, "F2")} | " +
                          $"{N(r.BestTestAccuracy, "F2")} | {N(r.TrainSeconds, "F1")} | [{Md(r.Folder)}]({Uri.EscapeDataString(r.Folder)}/) |");
        var problems = rows.Where(r => r.Problem is not null && r.Status != "completed").ToList();
        if (problems.Count > 0)
        {
            md.AppendLine();
            foreach (var r in problems) md.AppendLine($"- `{r.Folder}` ({r.Status}): {Md(r.Problem!)}");
        }
        md.AppendLine();
        md.AppendLine(rows.Count > MaxPlotted
            ? $"![train loss per step of the first {MaxPlotted} runs](sweep.png)"
            : "![train loss per step of each run](sweep.png)");
        AtomicFile.WriteAllText(Path.Combine(root, "sweep.md"), md.ToString());
    }

    /// <summary><c>sweep.png</c>: the train loss per step of the runs that have steps (the first <see cref="MaxPlotted"/>).</summary>
    static void WritePlot(string root, SweepHeader header, IReadOnlyList<SweepRow> rows)
    {
        var curves = new List<(string, IReadOnlyList<StepRecord>, bool)>();
        foreach (var r in rows.Take(MaxPlotted))
        {
            var file = Path.Combine(root, r.Folder, "steps.csv");
            if (!File.Exists(file)) continue;
            List<StepRecord> steps;
            try { steps = RunDirectory.ReadSteps(file); }
            catch (Exception e) when (e is BadInputException or RunDirectoryException or IOException or UnauthorizedAccessException) { continue; }
            var label = string.Join(", ", r.Combo.Select(kv => $"{kv.Key}={kv.Value}"));
            curves.Add((r.Status == "completed" ? label : $"{label} ({r.Status})", steps, r.Status == "diverged"));
        }
        LossPlot.WriteComparison(Path.Combine(root, "sweep.png"), curves, $"sweep over {string.Join(", ", header.Keys)}: train loss per step");
    }

    static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
    static string Md(string s) => s.Replace("|", "\\|").Replace("\n", " ");
}
