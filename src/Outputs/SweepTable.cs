using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ResnetMnist.Outputs;

/// <summary>One run of a sweep as its tables show it: the grid values, how it ended and what it measured.</summary>
/// <param name="Status"><c>completed</c>, <c>diverged</c>, <c>interrupted</c>, <c>failed</c> (an error before or during the run) or <c>pending</c>.</param>
/// <param name="Folder">The run folder's name inside the sweep folder.</param>
public sealed record SweepRow(IReadOnlyList<(string Key, string Value)> Combo, string Folder, string Status, string? Problem = null,
    double? FinalTestAccuracy = null, double? BestTestAccuracy = null, double? FinalTrainLoss = null, double? TrainSeconds = null)
{
    /// <summary>The row of a run folder from its <c>summary.json</c>; <c>pending</c> when there is none (or it cannot be read).</summary>
    public static SweepRow FromSummary(IReadOnlyList<(string Key, string Value)> combo, string sweepRoot, string folder)
    {
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
/// A sweep's run folders and its two tables, <c>sweep.md</c> and <c>sweep.csv</c>: one row per run (every grid key,
/// status, final and best test accuracy, final train loss, train seconds, run folder), rewritten atomically after
/// every run so that they are live.
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

    /// <summary>Rewrites <c>sweep.md</c> and <c>sweep.csv</c> in <paramref name="root"/>.</summary>
    public static void Write(string root, IReadOnlyList<string> keys, IReadOnlyList<SweepRow> rows, string baseConfig)
    {
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
        md.AppendLine($"Base config: `{baseConfig}`. {rows.Count(r => r.Status == "completed")} of {rows.Count} runs completed. " +
                      "Final-epoch train loss (mean of the epoch's batch losses), final and best test accuracy, training time; `sweep.csv` holds the same rows.");
        md.AppendLine();
        md.AppendLine($"| {string.Join(" | ", keys)} | status | final train loss | test accuracy (%) | best test accuracy (%) | train time (s) | run |");
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
        AtomicFile.WriteAllText(Path.Combine(root, "sweep.md"), md.ToString());
    }

    static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
    static string Md(string s) => s.Replace("|", "\\|").Replace("\n", " ");
}
