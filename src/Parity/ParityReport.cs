using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ResnetMnist.Data;
using ResnetMnist.Outputs;

namespace ResnetMnist.Parity;

/// <summary>Largest bounds a check accepts (relative differences; see <see cref="ParityCheck.Float64"/>).</summary>
/// <param name="FirstStepOnly">Judge only the first step's loss, and not the final weights (float32: chaotic).</param>
public sealed record ParityBounds(double Loss, double Layer, double Gradient, double FinalWeights, double Lr, bool FirstStepOnly);

/// <summary>Max |tool − reference| of a tensor, and that relative to max |reference|.</summary>
public sealed record TensorDifference(double MaxAbs, double MaxRel);

/// <summary>The outcome of <see cref="ParityCheck.Run"/>; written as <c>parity.json</c> (snake_case keys).</summary>
public sealed record ParityReport
{
    public bool Passed { get; init; }
    public string Dtype { get; init; } = "";
    public int Steps { get; init; }
    public int Threads { get; init; }
    public string AtenCpuCapability { get; init; } = "";
    public string ReferenceTorch { get; init; } = "";
    public double WorstRelativeLossDifference { get; init; }
    public int WorstLossStep { get; init; }
    public IReadOnlyList<double> ToolLosses { get; init; } = [];
    public IReadOnlyList<double> ReferenceLosses { get; init; } = [];
    public IReadOnlyList<double> RelativeLossDifferences { get; init; } = [];
    public IReadOnlyList<double> ToolLrs { get; init; } = [];
    public IReadOnlyList<double> ReferenceLrs { get; init; } = [];
    public double WorstRelativeLrDifference { get; init; }
    public int InitTensors { get; init; }
    public int InitTensorsDiffering { get; init; }
    public double InitMaxAbsDifference { get; init; }
    public IReadOnlyDictionary<string, TensorDifference> Layers { get; init; } = new Dictionary<string, TensorDifference>();
    public double GradientsWorstRelativeDifference { get; init; }
    public string GradientsWorstParameter { get; init; } = "";
    public double GradientsMaxAbsDifference { get; init; }
    public double FinalWeightsWorstRelativeDifference { get; init; }
    public string FinalWeightsWorstTensor { get; init; } = "";
    public double FinalWeightsMaxAbsDifference { get; init; }
    public ParityBounds Bounds { get; init; } = ParityCheck.Float64;
    public IReadOnlyList<string> Failures { get; init; } = [];
}

/// <summary>Writes <c>parity.json</c>, <c>parity.md</c> and <c>parity.png</c> of a report.</summary>
public static class ParityFiles
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // An unbounded bound or a diverged loss is written as "Infinity"/"NaN" rather than failing the report.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Write(ParityReport r, string dir, string title)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "parity.json"), JsonSerializer.Serialize(r, Json));
        AtomicFile.WriteAllText(Path.Combine(dir, "parity.md"), Markdown(r, title));
        WritePlot(r, Path.Combine(dir, "parity.png"), title);
    }

    /// <summary>Largest <c>parity.json</c> read back (a report is a few KB).</summary>
    public const long MaxReportBytes = 16L << 20;

    /// <summary>Reads a <c>parity.json</c> back; a truncated or foreign file is a <see cref="BadInputException"/> naming it.</summary>
    public static ParityReport Read(string file)
    {
        var bytes = InputFiles.ReadAllBytes(file, "a parity report (parity.json)", MaxReportBytes, m => new BadInputException($"{file}: {m}"));
        try
        {
            return JsonSerializer.Deserialize<ParityReport>(bytes, Json)
                ?? throw new BadInputException($"{file}: holds null; allowed: a parity report (a JSON object)");
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{file}: truncated or corrupt parity report ({ResnetMnist.Weights.TorchArchive.FirstLine(e.Message)}); allowed: the parity.json that `parity` writes");
        }
    }

    static string F(double v) => ParityCheck.Fmt(v);

    public static string Markdown(ParityReport r, string title)
    {
        var b = r.Bounds;
        var w = new StringBuilder();
        w.Append(CultureInfo.InvariantCulture, $"# Parity: {title}\n\n");
        w.Append(CultureInfo.InvariantCulture, $"**{(r.Passed ? "PASSED" : "FAILED")}** — {r.Dtype}, {r.Steps} steps, {r.Threads} threads, ATEN_CPU_CAPABILITY {r.AtenCpuCapability}, reference torch {r.ReferenceTorch}\n\n");
        w.Append("Differences: max |tool − reference|, and that divided by max |reference| (relative).\n\n");
        w.Append("| what | max abs | relative | bound (relative) |\n|---|---:|---:|---:|\n");
        w.Append(CultureInfo.InvariantCulture, $"| initial weights ({r.InitTensors} tensors, {r.InitTensorsDiffering} differ) | {F(r.InitMaxAbsDifference)} | | exact |\n");
        foreach (var (name, d) in r.Layers)
            w.Append(CultureInfo.InvariantCulture, $"| layer `{name}`, first batch | {F(d.MaxAbs)} | {F(d.MaxRel)} | {F(b.Layer)} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| gradients after the first backward (worst: `{r.GradientsWorstParameter}`) | {F(r.GradientsMaxAbsDifference)} | {F(r.GradientsWorstRelativeDifference)} | {F(b.Gradient)} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| per-step loss (worst: step {r.WorstLossStep}) | | {F(r.WorstRelativeLossDifference)} | {F(b.Loss)}{(b.FirstStepOnly ? " (step 1 only)" : "")} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| learning rate | | {F(r.WorstRelativeLrDifference)} | {F(b.Lr)} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| weights after {r.Steps} steps (worst: `{r.FinalWeightsWorstTensor}`) | {F(r.FinalWeightsMaxAbsDifference)} | {F(r.FinalWeightsWorstRelativeDifference)} | {(double.IsPositiveInfinity(b.FinalWeights) ? "reported only" : F(b.FinalWeights))} |\n\n");
        w.Append("| step | tool loss | reference loss | relative difference | tool lr | reference lr |\n|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < r.RelativeLossDifferences.Count; i++)
            w.Append(CultureInfo.InvariantCulture,
                $"| {i + 1} | {r.ToolLosses[i]:R} | {r.ReferenceLosses[i]:R} | {F(r.RelativeLossDifferences[i])} | {At(r.ToolLrs, i)} | {At(r.ReferenceLrs, i)} |\n");
        if (r.Failures.Count > 0)
        {
            w.Append("\n## Outside the bounds\n\n");
            foreach (var f in r.Failures) w.Append(CultureInfo.InvariantCulture, $"- {f}\n");
        }
        return w.ToString();
    }

    static string At(IReadOnlyList<double> xs, int i) => i < xs.Count ? xs[i].ToString("R", CultureInfo.InvariantCulture) : "";

    /// <summary>Both loss curves (left axis) and the relative difference per step on a log₁₀ axis (right).</summary>
    static void WritePlot(ParityReport r, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        plot.Title($"{title}: {(r.Passed ? "passed" : "FAILED")} ({r.Dtype})");
        plot.XLabel("step");
        plot.YLabel("train loss (batch mean)");
        double[] xs(int n) => Enumerable.Range(1, n).Select(i => (double)i).ToArray();
        var reference = plot.Add.Scatter(xs(r.ReferenceLosses.Count), r.ReferenceLosses.ToArray());
        reference.LegendText = "reference (PyTorch)";
        reference.LineWidth = 4;
        reference.MarkerSize = 0;
        var tool = plot.Add.Scatter(xs(r.ToolLosses.Count), r.ToolLosses.ToArray());
        tool.LegendText = "tool (TorchSharp)";
        tool.LineWidth = 1.5f;
        tool.MarkerSize = 5;
        if (r.RelativeLossDifferences.Count > 0)
        {
            // log10 of the relative difference; an exact match (0) is drawn at the floor 1e-17, below float64's resolution.
            const double floor = 1e-17;
            var logs = r.RelativeLossDifferences.Select(d => Math.Log10(Math.Max(d, floor))).ToArray();
            var diff = plot.Add.Scatter(xs(logs.Length), logs);
            diff.Axes.YAxis = plot.Axes.Right;
            diff.LegendText = "relative difference (right, log scale; 0 drawn at 1e-17)";
            diff.LineWidth = 1;
            diff.LinePattern = ScottPlot.LinePattern.Dashed;
            diff.MarkerSize = 4;
            plot.Axes.Right.Label.Text = "relative loss difference";
            plot.Axes.Right.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => "1e" + Math.Round(v).ToString(CultureInfo.InvariantCulture),
                IntegerTicksOnly = true,
            };
            double top = Math.Max(0, Math.Ceiling(logs.Max()) + 1);
            plot.Axes.SetLimitsY(-17, top, plot.Axes.Right);
        }
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(1000, 550, ScottPlot.ImageFormat.Png));
    }
}
