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

/// <summary>
/// PyTorch's own float32 spread for a config: the reference run twice, identical but for the thread count
/// (ParityCheck's float32 noise floor measurement).
/// </summary>
/// <param name="Threads">The second run's thread count.</param>
/// <param name="LossDifferences">Per step, |loss₂ − loss₁| / |loss₁| of the two reference runs.</param>
/// <param name="FinalWeights">Worst relative difference of the two runs' weights after the last step.</param>
public sealed record NoiseFloor(int Threads, IReadOnlyList<double> LossDifferences, double FinalWeights, string FinalWeightsTensor);

/// <summary>Max |tool − reference| of a tensor, and that relative to max |reference|.</summary>
public sealed record TensorDifference(double MaxAbs, double MaxRel);

/// <summary>The outcome of <see cref="ParityCheck.Run"/>; written as <c>parity.json</c> (snake_case keys).</summary>
public sealed record ParityReport
{
    public bool Passed { get; init; }
    public string Dtype { get; init; } = "";
    /// <summary>Steps compared: the ones asked for, or fewer when the config trains fewer.</summary>
    public int Steps { get; init; }
    /// <summary>Steps asked for (<c>--steps</c>).</summary>
    public int RequestedSteps { get; init; }
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
    /// <summary>The relative loss difference allowed at each step (<see cref="ParityCheck.AllowedLossDifferences"/>).</summary>
    public IReadOnlyList<double> AllowedLossDifferences { get; init; } = [];
    /// <summary>The relative final-weights difference allowed (infinite: reported only).</summary>
    public double FinalWeightsAllowed { get; init; } = double.PositiveInfinity;
    /// <summary>float32: PyTorch's own spread the later steps and final weights are judged against; null in float64.</summary>
    public NoiseFloor? NoiseFloor { get; init; }

    /// <summary>A plain sentence when fewer steps were compared than asked for; null otherwise.</summary>
    public string? FewerStepsNote => RequestedSteps > Steps
        ? $"compared {Steps} step{(Steps == 1 ? "" : "s")}, not the {RequestedSteps} asked for: the config trains only {Steps} (train.epochs × batches per epoch)"
        : null;
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
        if (r.FewerStepsNote is string fewer) w.Append(CultureInfo.InvariantCulture, $"**Note:** {fewer}.\n\n");
        var noise = r.NoiseFloor;
        if (noise is not null)
            w.Append(CultureInfo.InvariantCulture,
                $"PyTorch's own noise floor: the reference run again with {noise.Threads} thread{(noise.Threads == 1 ? "" : "s")} instead of {r.Threads}, per-step loss spread up to {F(noise.LossDifferences.DefaultIfEmpty(0).Max())}, final weights {F(noise.FinalWeights)} (`{noise.FinalWeightsTensor}`). From step 2 on the tool may differ by {ParityCheck.NoiseFactor} × that spread (never less than the first-step bound).\n\n");
        w.Append("Differences: max |tool − reference|, and that divided by max |reference| (relative).\n\n");
        w.Append("| what | max abs | relative | bound (relative) |\n|---|---:|---:|---:|\n");
        w.Append(CultureInfo.InvariantCulture, $"| initial weights ({r.InitTensors} tensors, {r.InitTensorsDiffering} differ) | {F(r.InitMaxAbsDifference)} | | exact |\n");
        foreach (var (name, d) in r.Layers)
            w.Append(CultureInfo.InvariantCulture, $"| layer `{name}`, first batch | {F(d.MaxAbs)} | {F(d.MaxRel)} | {F(b.Layer)} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| gradients after the first backward (worst: `{r.GradientsWorstParameter}`) | {F(r.GradientsMaxAbsDifference)} | {F(r.GradientsWorstRelativeDifference)} | {F(b.Gradient)} |\n");
        string lossBound = !b.FirstStepOnly ? F(b.Loss) : noise is null ? $"{F(b.Loss)} (step 1 only)" : $"{F(b.Loss)} at step 1, then {ParityCheck.NoiseFactor} × PyTorch's own";
        w.Append(CultureInfo.InvariantCulture, $"| per-step loss (worst: step {r.WorstLossStep}) | | {F(r.WorstRelativeLossDifference)} | {lossBound} |\n");
        w.Append(CultureInfo.InvariantCulture, $"| learning rate | | {F(r.WorstRelativeLrDifference)} | {F(b.Lr)} |\n");
        string finalBound = double.IsPositiveInfinity(r.FinalWeightsAllowed) ? "reported only"
            : noise is null ? F(r.FinalWeightsAllowed) : $"{F(r.FinalWeightsAllowed)} (PyTorch's own: {F(noise.FinalWeights)})";
        w.Append(CultureInfo.InvariantCulture, $"| weights after {r.Steps} steps (worst: `{r.FinalWeightsWorstTensor}`) | {F(r.FinalWeightsMaxAbsDifference)} | {F(r.FinalWeightsWorstRelativeDifference)} | {finalBound} |\n\n");
        w.Append("| step | tool loss | reference loss | relative difference | allowed | PyTorch's own | tool lr | reference lr |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < r.RelativeLossDifferences.Count; i++)
            w.Append(CultureInfo.InvariantCulture,
                $"| {i + 1} | {r.ToolLosses[i]:R} | {r.ReferenceLosses[i]:R} | {F(r.RelativeLossDifferences[i])} | {Allowed(r, i)} | {(noise is not null && i < noise.LossDifferences.Count ? F(noise.LossDifferences[i]) : "")} | {At(r.ToolLrs, i)} | {At(r.ReferenceLrs, i)} |\n");
        if (r.Failures.Count > 0)
        {
            w.Append("\n## Outside the bounds\n\n");
            foreach (var f in r.Failures) w.Append(CultureInfo.InvariantCulture, $"- {f}\n");
        }
        return w.ToString();
    }

    static string Allowed(ParityReport r, int i) =>
        i >= r.AllowedLossDifferences.Count ? "" : double.IsPositiveInfinity(r.AllowedLossDifferences[i]) ? "reported only" : F(r.AllowedLossDifferences[i]);

    static string At(IReadOnlyList<double> xs, int i) => i < xs.Count ? xs[i].ToString("R", CultureInfo.InvariantCulture) : "";

    static void WritePlot(ParityReport r, string path, string title) =>
        AtomicFile.WriteAllBytes(path, Plot(r, title).GetImageBytes(1000, 600, ScottPlot.ImageFormat.Png));

    /// <summary>
    /// Both loss curves (left axis) and the relative difference per step on a log₁₀ axis (right), with the bound it is
    /// judged against and, in float32, PyTorch's own spread; integer step ticks, the legend below the data.
    /// Not yet rendered (tests read its model).
    /// </summary>
    public static ScottPlot.Plot Plot(ParityReport r, string title)
    {
        var plot = new ScottPlot.Plot();
        plot.Title($"{title}: {(r.Passed ? "passed" : "FAILED")} ({r.Dtype})", size: 13);
        plot.XLabel(r.FewerStepsNote is null ? "step" : $"step ({r.Steps} compared, {r.RequestedSteps} asked: the config trains {r.Steps})");
        plot.YLabel("train loss (batch mean)");
        LossPlot.IntegerTicks(plot.Axes.Bottom);
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
            double Log(double d) => Math.Log10(Math.Max(d, floor));
            var logs = r.RelativeLossDifferences.Select(Log).ToArray();
            var diff = plot.Add.Scatter(xs(logs.Length), logs);
            diff.Axes.YAxis = plot.Axes.Right;
            diff.LegendText = "relative difference (right, log scale; 0 drawn at 1e-17)";
            diff.LineWidth = 1;
            diff.LinePattern = ScottPlot.LinePattern.Dashed;
            diff.MarkerSize = 4;
            double top = Math.Max(0, Math.Ceiling(logs.Max()) + 1);
            // The bound each step is judged against (steps reported only are left out).
            var judged = r.AllowedLossDifferences.Select((a, i) => (Step: i + 1.0, Allowed: a)).Where(p => double.IsFinite(p.Allowed)).ToList();
            if (judged.Count > 0)
            {
                var bound = judged.Select(p => p.Allowed).Distinct().Count() == 1
                    ? (ScottPlot.IPlottable)plot.Add.HorizontalLine(Log(judged[0].Allowed))
                    : plot.Add.ScatterLine(judged.Select(p => p.Step).ToArray(), judged.Select(p => Log(p.Allowed)).ToArray());
                switch (bound)
                {
                    case ScottPlot.Plottables.HorizontalLine h:
                        (h.Axes.YAxis, h.Color, h.LinePattern, h.LegendText) = (plot.Axes.Right, ScottPlot.Colors.Red, ScottPlot.LinePattern.Dotted, BoundLegend(r));
                        break;
                    case ScottPlot.Plottables.Scatter sc:
                        (sc.Axes.YAxis, sc.Color, sc.LinePattern, sc.LegendText, sc.ConnectStyle) =
                            (plot.Axes.Right, ScottPlot.Colors.Red, ScottPlot.LinePattern.Dotted, BoundLegend(r), ScottPlot.ConnectStyle.StepVertical);
                        break;
                }
                top = Math.Max(top, Math.Ceiling(judged.Max(p => Log(p.Allowed))) + 1);
            }
            if (r.NoiseFloor is { LossDifferences.Count: > 0 } noise)
            {
                var own = plot.Add.Scatter(xs(noise.LossDifferences.Count), noise.LossDifferences.Select(Log).ToArray());
                own.Axes.YAxis = plot.Axes.Right;
                own.LegendText = $"PyTorch vs itself, {noise.Threads} vs {r.Threads} threads (right)";
                own.LineWidth = 1;
                own.MarkerSize = 3;
                own.Color = ScottPlot.Colors.Gray;
            }
            plot.Axes.Right.Label.Text = "relative loss difference";
            plot.Axes.Right.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => "1e" + Math.Round(v).ToString(CultureInfo.InvariantCulture),
                IntegerTicksOnly = true,
            };
            plot.Axes.SetLimitsY(-17, top, plot.Axes.Right);
        }
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        return plot;
    }

    static string BoundLegend(ParityReport r) =>
        !r.Bounds.FirstStepOnly ? $"bound {F(r.Bounds.Loss)} (right)"
        : r.NoiseFloor is null ? $"bound {F(r.Bounds.Loss)}, step 1 only (right)"
        : $"bound: {F(r.Bounds.Loss)} at step 1, then {ParityCheck.NoiseFactor} × PyTorch's own (right)";
}
