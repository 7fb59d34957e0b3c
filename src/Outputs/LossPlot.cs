namespace ResnetMnist.Outputs;

/// <summary><c>loss_curve.png</c>: train loss per step (left axis) and test accuracy per epoch (right axis).</summary>
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
}
