using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Parity;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests.Outputs;

/// <summary>
/// loss_curve.png and parity.png as plot models (what ScottPlot draws, read before and after layout, not pixels): full
/// titles, whole-number step ticks, the legend outside the data, the bound drawn, a divergence marked.
/// </summary>
[TestFixture, Category("Outputs")]
public sealed class PlotTests
{
    static List<StepRecord> Steps(int n) => Enumerable.Range(1, n).Select(i => new StepRecord(i, 1, 2.3 / i, 1e-3)).ToList();

    /// <summary>Lays the plot out (as saving it does) and returns the bottom axis' tick positions.</summary>
    static double[] StepTicks(ScottPlot.Plot plot)
    {
        plot.GetImageBytes(900, 540, ScottPlot.ImageFormat.Png);
        return plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Position).ToArray();
    }

    static void AssertLegendOutsideTheData(ScottPlot.Plot plot)
    {
        Assert.That(plot.Legend.IsVisible, Is.False, "no legend inside the data area");
        Assert.That(plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>().Count(), Is.EqualTo(1), "one legend panel on an edge of the figure");
    }

    [TestCase(3), TestCase(7), TestCase(12)]
    public void LossCurveStepTicksAreWholeNumbersAndTheLegendIsOutside(int steps)
    {
        var plot = LossPlot.Build(Steps(steps), [new EpochRecord(1, 1, 1, 50, 1e-3, 1, 1)], "t");
        var ticks = StepTicks(plot);
        Assert.That(ticks, Is.Not.Empty);
        Assert.That(ticks, Has.All.Matches<double>(t => t == Math.Round(t)), string.Join(", ", ticks));
        AssertLegendOutsideTheData(plot);
    }

    [Test]
    public void TitleNamesArchDatasetWeightsOptimizerAndScheduler()
    {
        var cfg = ConfigLoader.Parse("""
            data: {dataset: cifar10}
            model: {arch: resnet34, pretrained: mlnet, init_from: runs/a/checkpoints/best.pt}
            optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
            scheduler: {name: cosine}
            train: {batch_size: 128}
            """, null);
        Assert.That(LossPlot.Describe(cfg),
            Is.EqualTo("resnet34 on cifar10, weights mlnet + init_from best.pt, sgd lr 0.05, scheduler cosine, batch 128"));
        var plot = LossPlot.Build(Steps(4), [], "run-1: " + LossPlot.Describe(cfg));
        Assert.That(plot.Axes.Title.Label.Text, Is.EqualTo("run-1: " + LossPlot.Describe(cfg)));
    }

    [Test]
    public void ADivergedRunMarksTheStepEvenWithoutAFiniteLoss()
    {
        var empty = LossPlot.Build([], [], "t", new LossPlot.Divergence(1));
        var line = empty.GetPlottables().OfType<ScottPlot.Plottables.VerticalLine>().Single();
        Assert.That(line.X, Is.EqualTo(1));
        Assert.That(line.LegendText, Does.Contain("diverged at step 1"));
        StepTicks(empty);
        Assert.That(empty.Axes.Bottom.Range.Contains(1), Is.True, "the marked step is in view");

        // a curve that blew up before the NaN: the axis keeps the early steps readable (not squashed by 1e30)
        var steps = Steps(5);
        steps.Add(new StepRecord(6, 1, 1e30, 1e-3));
        var blown = LossPlot.Build(steps, [], "t", new LossPlot.Divergence(7));
        StepTicks(blown);
        Assert.That(blown.Axes.Left.Range.Max, Is.LessThan(100));
        Assert.That(blown.GetPlottables().OfType<ScottPlot.Plottables.VerticalLine>().Single().X, Is.EqualTo(7));
    }

    [Test]
    public void ADivergedTrainingRunWritesAMarkedLossCurve()
    {
        var dir = TempDir.New("diverged-plot");
        var cfg = ConfigLoader.Parse($$"""
            seed: 0
            threads: 2
            data: {dataset: mnist, root: '{{Tool.SampleDataRoot}}', train_limit: 32, test_limit: 8}
            train: {epochs: 1, batch_size: 16}
            optimizer: {name: sgd, lr: 1.0e+30}
            """, null);
        var run = Path.Combine(dir, "run");
        var result = LibraryRun.Run(cfg, run);
        Assert.That(result.Status, Is.EqualTo(RunStatus.Diverged));
        Assert.That(result.DivergedAtStep, Is.Not.Null.And.GreaterThan(0), result.Problem);
        Assert.That(new FileInfo(Path.Combine(run, "loss_curve.png")).Length, Is.GreaterThan(1000));
    }

    static ParityReport Report(string dtype, int steps, int requested, NoiseFloor? noise)
    {
        var bounds = dtype == "float64" ? ParityCheck.Float64 : ParityCheck.Float32;
        var rel = Enumerable.Range(1, steps).Select(i => 1e-8 * i).ToList();
        return new ParityReport
        {
            Dtype = dtype, Steps = steps, RequestedSteps = requested, Threads = 2, Bounds = bounds,
            ToolLosses = Enumerable.Range(1, steps).Select(i => 2.3 / i).ToList(),
            ReferenceLosses = Enumerable.Range(1, steps).Select(i => 2.3 / i).ToList(),
            RelativeLossDifferences = rel,
            AllowedLossDifferences = ParityCheck.AllowedLossDifferences(bounds, steps, noise),
            NoiseFloor = noise,
        };
    }

    [Test]
    public void ParityPlotDrawsTheBoundWithWholeStepTicksAndTheLegendOutside()
    {
        var plot = ParityFiles.Plot(Report("float64", 5, 5, null), "quickstart: " + LossPlot.Describe(new TrainingConfig()));
        Assert.That(plot.Axes.Title.Label.Text, Does.StartWith("quickstart: resnet18 on mnist, weights none"));
        var ticks = StepTicks(plot);
        Assert.That(ticks, Has.All.Matches<double>(t => t == Math.Round(t)), string.Join(", ", ticks));
        AssertLegendOutsideTheData(plot);
        var bound = plot.GetPlottables().OfType<ScottPlot.Plottables.HorizontalLine>().Single();
        Assert.That(bound.Y, Is.EqualTo(Math.Log10(ParityCheck.Float64.Loss)).Within(1e-12), "the float64 bound, on the log10 axis");
        Assert.That(bound.Axes.YAxis, Is.SameAs(plot.Axes.Right));
    }

    [Test]
    public void Float32ParityPlotDrawsTheNoiseFloorAndTheBoundFollowingIt()
    {
        var noise = new NoiseFloor(1, [0, 1e-6, 1e-4, 1e-5], 3e-3, "fc.weight");
        var report = Report("float32", 4, 4, noise);
        Assert.That(report.AllowedLossDifferences, Is.EqualTo(new[] { 1e-5, 3e-5, 3e-3, 3e-3 }).Within(1e-15),
            "step 1 the fixed bound; then 30 × PyTorch's largest spread so far, never below the fixed bound");
        var plot = ParityFiles.Plot(report, "t");
        var scatters = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        Assert.That(scatters.Select(s => s.LegendText), Has.Some.StartsWith("bound: ").And.Some.StartsWith("PyTorch vs itself, 1 vs 2 threads"));
        var ticks = StepTicks(plot);
        Assert.That(ticks, Has.All.Matches<double>(t => t == Math.Round(t)), string.Join(", ", ticks));
        Assert.That(ParityFiles.Markdown(report, "t"), Does.Contain("PyTorch's own noise floor: the reference run again with 1 thread instead of 2"));
    }

    [Test]
    public void FewerStepsThanAskedIsSaidPlainly()
    {
        var report = Report("float64", 2, 3, null);
        Assert.That(report.FewerStepsNote, Is.EqualTo("compared 2 steps, not the 3 asked for: the config trains only 2 (train.epochs × batches per epoch)"));
        Assert.That(ParityFiles.Markdown(report, "t"), Does.Contain("**Note:** compared 2 steps, not the 3 asked for"));
        Assert.That(Report("float64", 3, 3, null).FewerStepsNote, Is.Null);
    }
}
