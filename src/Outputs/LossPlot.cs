namespace ResnetMnist.Outputs;

/// <summary>
/// <c>loss_curve.png</c>: train loss per step (left axis) and test accuracy per epoch (right axis); and
/// <c>sweep.png</c>: several runs' train loss per step on one pair of axes (<see cref="WriteComparison"/>).
/// </summary>
public static class LossPlot
{
    public static void Write(string path, IReadOnlyList<StepRecord> steps, IReadOnlyList<EpochRecord> epochs, string title)
    {
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("train loss (batch mean)");
        if (steps.Count > 0)
        {
            var loss = plot.Add.Scatter(steps.Select(s => (double)s.Step).ToArray(), steps.Select(s => s.Loss).ToArray());
            loss.LegendText = "train loss";
            loss.MarkerSize = 0;
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
        plot.ShowLegend(ScottPlot.Alignment.UpperCenter);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 500, ScottPlot.ImageFormat.Png));
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
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
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
}
