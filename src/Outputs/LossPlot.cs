using System.Globalization;
using ResnetMnist.Config;

namespace ResnetMnist.Outputs;

/// <summary>
/// <c>loss_curve.png</c>: train loss per step (left axis) and test accuracy per epoch (right axis), integer step ticks,
/// the legend below the data; a diverged run marks the step where it stopped. And <c>sweep.png</c>: several runs'
/// train loss per step on one pair of axes (<see cref="WriteComparison"/>).
/// </summary>
public static class LossPlot
{
    /// <summary>
    /// What a run trained, for plot titles: <c>resnet18 on mnist, weights none, adam lr 0.001, scheduler none, batch 64</c>
    /// (weights: <c>model.pretrained</c>, then <c>init_from</c>'s file name when set).
    /// </summary>
    public static string Describe(TrainingConfig cfg)
    {
        var weights = cfg.Model.Pretrained.Text;
        if (cfg.Model.InitFrom is string from) weights += $" + init_from {Path.GetFileName(Path.TrimEndingDirectorySeparator(from))}";
        return string.Create(CultureInfo.InvariantCulture,
            $"{cfg.Model.Arch.Name} on {cfg.Data.Dataset.Name}, weights {weights}, {cfg.Optimizer.Name.Name()} lr {cfg.Optimizer.Lr}, scheduler {cfg.Scheduler.Name.Name()}, batch {cfg.Train.BatchSize}");
    }

    /// <summary>Where a run diverged (drawn as a vertical line; why is summary.json's <c>problem</c>).</summary>
    /// <param name="Step">Global step at which the loss or the weights stopped being finite.</param>
    public sealed record Divergence(long Step);

    public static void Write(string path, IReadOnlyList<StepRecord> steps, IReadOnlyList<EpochRecord> epochs, string title, Divergence? diverged = null) =>
        AtomicFile.WriteAllBytes(path, Build(steps, epochs, title, diverged).GetImageBytes(900, 540, ScottPlot.ImageFormat.Png));

    /// <summary>The plot, not yet rendered (tests read its model: title, axes, legend, plottables).</summary>
    public static ScottPlot.Plot Build(IReadOnlyList<StepRecord> steps, IReadOnlyList<EpochRecord> epochs, string title, Divergence? diverged = null)
    {
        var plot = new ScottPlot.Plot();
        plot.Title(title, size: 13);
        plot.XLabel("step");
        plot.YLabel("train loss (batch mean)");
        IntegerTicks(plot.Axes.Bottom);
        if (steps.Count > 0)
        {
            var loss = plot.Add.Scatter(steps.Select(s => (double)s.Step).ToArray(), steps.Select(s => s.Loss).ToArray());
            loss.LegendText = "train loss";
            loss.MarkerSize = steps.Count == 1 ? 5 : 0;
            loss.LineWidth = 1;
        }
        if (epochs.Count > 0 && steps.Count > 0)
        {
            // x of an epoch's accuracy: the last step of that epoch
            var lastStep = steps.GroupBy(s => s.Epoch).ToDictionary(g => g.Key, g => (double)g.Max(s => s.Step));
            var xs = epochs.Select(e => lastStep.TryGetValue(e.Epoch, out var x) ? x : 0).ToArray();
            var acc = plot.Add.Scatter(xs, epochs.Select(e => e.TestAccuracy).ToArray());
            acc.Axes.YAxis = plot.Axes.Right;
            acc.LegendText = "test accuracy (%)";
            acc.MarkerSize = 7;
            plot.Axes.Right.Label.Text = "test accuracy (%)";
            plot.Axes.SetLimitsY(0, 100, plot.Axes.Right);
        }
        if (diverged is not null)
        {
            var line = plot.Add.VerticalLine(diverged.Step);
            line.Color = ScottPlot.Colors.Red;
            line.LinePattern = ScottPlot.LinePattern.Dashed;
            line.LegendText = $"diverged at step {diverged.Step} (not finite; see summary.json problem)";
            // the last finite steps before a divergence can be huge: keep the curve before them readable
            double first = steps.Count > 0 ? steps[0].Loss : 1;
            double top = steps.Count > 0 ? Math.Min(steps.Max(s => s.Loss), 10 * Math.Max(first, 1e-3)) : 1;
            plot.Axes.SetLimitsX(0, Math.Max(diverged.Step + 1, steps.Count > 0 ? steps[^1].Step + 1 : 1), plot.Axes.Bottom);
            plot.Axes.SetLimitsY(0, top * 1.05, plot.Axes.Left);
        }
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        return plot;
    }

    /// <summary>
    /// Writes several runs' train loss per step into one plot: one line per run, labelled in a legend outside the data
    /// area (right of it), integer step ticks. Points that are not finite (a diverged run's last steps) are left out,
    /// and the y axis spans the finite losses of the runs that did not diverge (when there are any), so that one
    /// run's blow-up does not flatten the others. Runs without a finite step are left out.
    /// </summary>
    /// <param name="runs">Each run's legend label, its steps, and whether it diverged.</param>
    public static void WriteComparison(string path, IReadOnlyList<(string Label, IReadOnlyList<StepRecord> Steps, bool Diverged)> runs, string title)
    {
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("train loss (batch mean)");
        IntegerTicks(plot.Axes.Bottom);
        double top = 0;
        foreach (var (label, steps, diverged) in runs)
        {
            var finite = steps.Where(s => double.IsFinite(s.Loss)).ToList();
            if (finite.Count == 0) continue;
            var line = plot.Add.Scatter(finite.Select(s => (double)s.Step).ToArray(), finite.Select(s => s.Loss).ToArray());
            line.LegendText = label;
            line.MarkerSize = finite.Count == 1 ? 5 : 0;
            line.LineWidth = 1.5f;
            if (!diverged) top = Math.Max(top, finite.Max(s => s.Loss));
        }
        plot.Axes.AutoScale();
        if (top > 0) plot.Axes.SetLimitsY(0, top * 1.05);
        plot.ShowLegend(ScottPlot.Edge.Right);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(1000, 500, ScottPlot.ImageFormat.Png));
    }

    /// <summary>Ticks only at whole numbers (steps are counted, never fractional).</summary>
    public static void IntegerTicks(ScottPlot.IAxis axis) =>
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
}
