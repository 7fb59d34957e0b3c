using System.Text.RegularExpressions;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Tool;
using ResnetMnist.Training;
using Spectre.Console;
using Progress = ResnetMnist.Tool.Progress;

namespace ResnetMnist.ParityTests.Commands;

/// <summary>
/// The progress display: the live bar drawn by Spectre on a console of fixed width (80 columns), the plain lines,
/// and that training reports its evaluation batch by batch.
/// </summary>
[TestFixture, Category("Commands")]
public sealed partial class ProgressTests
{
    [GeneratedRegex(@"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")]
    private static partial Regex Ansi();

    /// <summary>Everything the bar wrote, escape sequences removed, split into the lines a terminal would show.</summary>
    static List<string> DriveBar(int width, Action<Progress> drive)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = width;
        var bar = new Progress.Bar(console);
        bar.Wrap(() => { drive(bar); return 0; });
        return Ansi().Replace(writer.ToString(), "\n").Split('\n').Select(l => l.TrimEnd('\r')).ToList();
    }

    // The widest realistic values: epoch 99/99, 9,999 batches, 99,999 img/s, lr with a negative exponent.
    static readonly StepRecord WideStep = new(999_999, 99, 2.302585, 1.25e-3);

    [Test]
    public void BarShowsStepLossLrAndEvaluationEachOnOneLineOf80Columns()
    {
        var lines = DriveBar(80, p =>
        {
            p.EpochStarted(99, 99, 9999, 0);
            p.StepFinished(WideStep, 9999, 9999, 99_999);
            p.Evaluating(5_000, 10_000);
            p.EpochFinished(new EpochRecord(99, 0.1234, 0.0567, 100.0, 1.25e-3, 999.9, 99_999), best: true);
        });
        var describe = Progress.Bar.Describe(WideStep, 99, 9999, 9999, 99_999);
        Assert.That(describe, Has.Length.LessThanOrEqualTo(Progress.Bar.DescriptionWidth));
        Assert.That(describe, Does.Contain("lr 1.25e-03"));
        // Each task stays on one line: its whole description and its bar share a line, and nothing is wider than 80.
        Assert.That(lines.Any(l => l.Contains(describe, StringComparison.Ordinal) && l.Contains('━')), string.Join("\n", lines));
        Assert.That(lines.Any(l => l.Contains("epoch 99/99 testing 5000/10000 images", StringComparison.Ordinal) && l.Contains('━')),
            "the evaluation shows its own progress\n" + string.Join("\n", lines));
        var epochLine = Progress.EpochLine(new EpochRecord(99, 0.1234, 0.0567, 100.0, 1.25e-3, 999.9, 99_999), best: true);
        Assert.That(lines, Does.Contain(epochLine));
        Assert.That(lines.Max(l => l.Length), Is.LessThanOrEqualTo(80), string.Join("\n", lines));
    }

    [Test]
    public void EvaluationIsATaskOfItsOwnThatStartsEmptyAndFills()
    {
        var lines = DriveBar(100, p =>
        {
            p.EpochStarted(1, 2, 10, 0);
            p.StepFinished(new StepRecord(10, 1, 0.5, 0.01), 10, 10, 1000);
            p.Evaluating(0, 64);
            Thread.Sleep(300); // Spectre redraws every 100 ms: let it draw the empty evaluation bar
        });
        // at 0 of 64 images the evaluation line shows 0 images, not the training task's 100%
        Assert.That(lines.Any(l => l.Contains("testing 0/64 images", StringComparison.Ordinal)), string.Join("\n", lines));
    }

    [Test]
    public void PlainLinesFit80ColumnsAndCarryTheLr()
    {
        var line = Progress.Lines.StepLine(WideStep, 99, 9999, 9999, 99_999, TimeSpan.FromHours(99));
        Assert.That(line, Does.Contain("lr 1.25e-03"));
        Assert.That(line, Has.Length.LessThanOrEqualTo(80), line);
        var epoch = Progress.EpochLine(new EpochRecord(99, 0.1234, 0.0567, 100.0, 1.25e-3, 999.9, 99_999), best: true);
        Assert.That(epoch, Has.Length.LessThanOrEqualTo(80), epoch);
        Assert.That(epoch, Does.StartWith("Epoch 99, loss 0.1234 | test loss 0.0567 acc 100.00% (best)"));
    }

    sealed class Recorder : ITrainingObserver
    {
        public readonly List<(int Images, int Total)> Evaluations = [];
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { }
        public void EpochFinished(EpochRecord epoch, bool best) { }
        public void Info(string message) { }
        public void Evaluating(int images, int total) => Evaluations.Add((images, total));
    }

    [Test]
    public void TrainingReportsEachEvaluationBatch()
    {
        var dir = TempDir.New("progress-eval");
        var cfg = ConfigLoader.Parse($$"""
            seed: 0
            threads: 2
            data: {dataset: mnist, root: '{{Tool.SampleDataRoot}}', train_limit: 16, test_limit: 10}
            train: {epochs: 1, batch_size: 16, eval_batch_size: 4}
            """, null);
        var recorder = new Recorder();
        var result = LibraryRun.Run(cfg, Path.Combine(dir, "run"), observer: recorder);
        Assert.That(result.Status, Is.EqualTo(RunStatus.Completed), result.Problem);
        Assert.That(recorder.Evaluations, Is.EqualTo(new[] { (4, 10), (8, 10), (10, 10) }));
    }
}
