using System.Diagnostics;
using System.Globalization;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console;

namespace ResnetMnist.Tool;

/// <summary>Training progress: a live bar on a terminal, plain lines at a steady interval when redirected.</summary>
abstract class Progress : ITrainingObserver
{
    public static Progress Create(bool quiet, double logEverySeconds) =>
        quiet ? new Lines(double.PositiveInfinity) :
        !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? new Bar() : new Lines(logEverySeconds);

    public abstract T Wrap<T>(Func<T> body);
    public abstract void EpochStarted(int epoch, int epochs, int batches, int firstBatch);
    public abstract void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond);

    public virtual void EpochFinished(EpochRecord e, bool best) =>
        Say(string.Create(CultureInfo.InvariantCulture,
            $"Epoch {e.Epoch}, loss: {e.TrainLoss:F4}, {ValidationPart(e, best)}test loss: {e.TestLoss:F4}, test accuracy: {e.TestAccuracy:F2}%{(best && e.ValAccuracy is null ? " (best)" : "")}, {e.EpochSeconds:F1} s, {e.TrainImagesPerSecond:F0} img/s"));

    /// <summary>"val loss: …, val accuracy: …% (best), " with a validation split (which then chooses the best epoch); "" without.</summary>
    protected static string ValidationPart(EpochRecord e, bool best) => e.ValAccuracy is double acc
        ? string.Create(CultureInfo.InvariantCulture, $"val loss: {e.ValLoss:F4}, val accuracy: {acc:F2}%{(best ? " (best)" : "")}, ") : "";

    public virtual void Info(string message) => Say(message);

    /// <summary>
    /// The note that a signal arrived and the run is stopping (called on the signal's thread): standard error here;
    /// the live bar shows it in place of the step line instead, where a line written under it would be drawn over.
    /// </summary>
    public virtual void Interrupting(string message)
    {
        try { Terminal.Err(message); }
        catch (IOException) { } // a hung-up terminal: the checkpoint matters, the message does not
    }

    /// <summary>
    /// A progress line, escaped (<see cref="Terminal"/>: notes carry paths, config values and tensor names). Progress is
    /// best effort: output that cannot be written (a terminal hung up) never stops training.
    /// </summary>
    protected static void Say(string line)
    {
        try { Terminal.Out(line); }
        catch (IOException) { }
    }

    sealed class Lines(double interval) : Progress
    {
        readonly Stopwatch _sinceLine = new(), _epochClock = new();
        int _epochs, _firstBatch;

        public override T Wrap<T>(Func<T> body) => body();

        public override void EpochStarted(int epoch, int epochs, int batches, int firstBatch)
        {
            (_epochs, _firstBatch) = (epochs, firstBatch);
            _sinceLine.Restart();
            _epochClock.Restart();
        }

        public override void StepFinished(StepRecord s, int batch, int batches, double ips)
        {
            if (_sinceLine.Elapsed.TotalSeconds < interval && batch != batches) return;
            _sinceLine.Restart();
            double perBatch = _epochClock.Elapsed.TotalSeconds / Math.Max(1, batch - _firstBatch);
            var eta = TimeSpan.FromSeconds(perBatch * (batches - batch));
            Say(string.Create(CultureInfo.InvariantCulture,
                $"epoch {s.Epoch}/{_epochs} step {batch}/{batches} loss {s.Loss:F4} lr {s.Lr:G3} {ips:F0} img/s eta {eta:hh\\:mm\\:ss}"));
        }
    }

    sealed class Bar : Progress
    {
        ProgressContext? _ctx;
        ProgressTask? _task;
        int _epochs;
        volatile string? _interrupting;

        public override T Wrap<T>(Func<T> body)
        {
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx => { _ctx = ctx; result = body(); });
            return result;
        }

        public override void EpochStarted(int epoch, int epochs, int batches, int firstBatch)
        {
            _epochs = epochs;
            _task = _ctx!.AddTask($"epoch {epoch}/{epochs}", maxValue: batches);
            _task.Value = firstBatch;
        }

        public override void StepFinished(StepRecord s, int batch, int batches, double ips)
        {
            if (_task is null) return;
            _task.Value = batch;
            _task.Description = _interrupting is string note ? Highlight(note)
                : string.Create(CultureInfo.InvariantCulture, $"epoch {s.Epoch}/{_epochs} step {batch}/{batches} loss {s.Loss:F4} {ips:F0} img/s");
        }

        public override void Interrupting(string message)
        {
            _interrupting = message;
            if (_task is { IsFinished: false } task) task.Description = Highlight(message); // ProgressTask is thread-safe
            else base.Interrupting(message);
        }

        static string Highlight(string message) => $"[yellow]{Markup.Escape(Terminal.Safe(message))}[/]";

        public override void EpochFinished(EpochRecord e, bool best)
        {
            _task?.StopTask();
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture,
                $"Epoch {e.Epoch}, loss: {e.TrainLoss:F4}, {ValidationPart(e, best)}test loss: {e.TestLoss:F4}, test accuracy: [bold]{e.TestAccuracy:F2}%[/]{(best && e.ValAccuracy is null ? " (best)" : "")}, {e.EpochSeconds:F1} s, {e.TrainImagesPerSecond:F0} img/s");
        }

        // Interpolated markup escapes its holes for Spectre (Markup.Escape), after Printable.Escape for the terminal.
        public override void Info(string message) => AnsiConsole.MarkupLineInterpolated($"[grey]{Terminal.Safe(message)}[/]");
    }
}
