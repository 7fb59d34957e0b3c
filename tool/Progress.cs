using System.Diagnostics;
using System.Globalization;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console;

namespace ResnetMnist.Tool;

/// <summary>Training progress: a live bar on a terminal, plain lines at a steady interval when redirected.</summary>
/// <summary>
/// Training progress: a live bar on a terminal, plain lines at a steady interval when redirected. Both show the
/// end-of-epoch evaluation as it runs, and every line fits an 80-column terminal.
/// </summary>
abstract class Progress : ITrainingObserver
{
    public static Progress Create(bool quiet, double logEverySeconds) =>
        quiet ? new Lines(double.PositiveInfinity) :
        !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? new Bar(AnsiConsole.Console) : new Lines(logEverySeconds);

    public abstract T Wrap<T>(Func<T> body);
    public abstract void EpochStarted(int epoch, int epochs, int batches, int firstBatch);
    public abstract void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond);
    public abstract void Evaluating(int images, int total);

    public virtual void EpochFinished(EpochRecord e, bool best) => Say(EpochLine(e, best));

    /// <summary>
    /// The line after each epoch, at most 80 characters up to epoch 99, 999 s and 99,999 img/s
    /// (e.g. <c>Epoch 3, loss 0.1234 | test loss 0.0567 acc 98.12% (best) | 12.3 s 1234 img/s</c>); with a validation
    /// split, which then chooses the best epoch, validation's loss and accuracy and the test accuracy
    /// (<c>Epoch 3, loss 0.1234 | val loss 0.0567 acc 98.12% (best) | test acc 97.90% | 12.3 s</c>).
    /// </summary>
    public static string EpochLine(EpochRecord e, bool best) => e.ValAccuracy is double val
        ? string.Create(CultureInfo.InvariantCulture,
            $"Epoch {e.Epoch}, loss {e.TrainLoss:F4} | val loss {e.ValLoss:F4} acc {val:F2}%{(best ? " (best)" : "")} | test acc {e.TestAccuracy:F2}% | {Seconds(e.EpochSeconds)} s")
        : string.Create(CultureInfo.InvariantCulture,
            $"Epoch {e.Epoch}, loss {e.TrainLoss:F4} | test loss {e.TestLoss:F4} acc {e.TestAccuracy:F2}%{(best ? " (best)" : "")} | {Seconds(e.EpochSeconds)} s {e.TrainImagesPerSecond:F0} img/s");

    /// <summary>A learning rate in 8 characters or fewer (<c>1.00e-03</c>).</summary>
    public static string Lr(double lr) => lr.ToString("0.00e+00", CultureInfo.InvariantCulture);

    static string Seconds(double s) => s.ToString(s < 100 ? "F1" : "F0", CultureInfo.InvariantCulture);

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

    /// <summary>Lines at most every <paramref name="interval"/> seconds (and at each epoch's last step).</summary>
    public sealed class Lines(double interval) : Progress
    {
        readonly Stopwatch _sinceLine = new(), _epochClock = new(), _evalClock = new();
        int _epoch, _epochs, _firstBatch;

        public override T Wrap<T>(Func<T> body) => body();

        public override void EpochStarted(int epoch, int epochs, int batches, int firstBatch)
        {
            (_epoch, _epochs, _firstBatch) = (epoch, epochs, firstBatch);
            _sinceLine.Restart();
            _epochClock.Restart();
            _evalClock.Reset();
        }

        public override void StepFinished(StepRecord s, int batch, int batches, double ips)
        {
            if (_sinceLine.Elapsed.TotalSeconds < interval && batch != batches) return;
            _sinceLine.Restart();
            double perBatch = _epochClock.Elapsed.TotalSeconds / Math.Max(1, batch - _firstBatch);
            var eta = TimeSpan.FromSeconds(perBatch * (batches - batch));
            Say(StepLine(s, _epochs, batch, batches, ips, eta));
        }

        /// <summary>
        /// The training line, at most 80 characters up to 99 epochs and 9,999 batches
        /// (<c>epoch 1/10 step 12/235 loss 0.1234 lr 1.00e-03 1234 img/s eta 00:00:12</c>).
        /// </summary>
        public static string StepLine(StepRecord s, int epochs, int batch, int batches, double ips, TimeSpan eta) =>
            string.Create(CultureInfo.InvariantCulture,
                $"epoch {s.Epoch}/{epochs} step {batch}/{batches} loss {s.Loss:F4} lr {Lr(s.Lr)} {ips:F0} img/s eta {eta:hh\\:mm\\:ss}");

        public override void Evaluating(int images, int total)
        {
            if (!_evalClock.IsRunning) { _evalClock.Start(); _sinceLine.Restart(); }
            if (_sinceLine.Elapsed.TotalSeconds < interval || images == total) return; // the epoch line follows the last batch
            _sinceLine.Restart();
            var eta = TimeSpan.FromSeconds(_evalClock.Elapsed.TotalSeconds / Math.Max(1, images) * (total - images));
            Say(string.Create(CultureInfo.InvariantCulture, $"epoch {_epoch}/{_epochs} testing {images}/{total} images eta {eta:hh\\:mm\\:ss}"));
        }
    }

    /// <summary>
    /// A live bar on <paramref name="console"/>: one task per epoch's training (step, loss, lr, img/s), then one for its
    /// evaluation, each a single line within the console's width (80 columns and wider).
    /// </summary>
    public sealed class Bar(IAnsiConsole console) : Progress
    {
        /// <summary>Longest training description (<see cref="Describe"/>) up to 99 epochs, 9,999 batches and 99,999 img/s.</summary>
        public const int DescriptionWidth = 57;

        ProgressContext? _ctx;
        ProgressTask? _task, _eval;
        int _epoch, _epochs;
        volatile string? _interrupting;

        public override T Wrap<T>(Func<T> body)
        {
            T result = default!;
            // description, bar, time left: each column is followed by one space; the bar takes what the description leaves
            int barWidth = Math.Clamp(console.Profile.Width - DescriptionWidth - 12, 5, 40);
            console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = barWidth }, new RemainingTimeColumn())
                .Start(ctx => { _ctx = ctx; result = body(); });
            return result;
        }

        /// <summary>The training task's line: <c>epoch 1/10 12/235 loss 0.1234 lr 1.00e-03 1234 img/s</c>.</summary>
        public static string Describe(StepRecord s, int epochs, int batch, int batches, double ips) =>
            string.Create(CultureInfo.InvariantCulture, $"epoch {s.Epoch}/{epochs} {batch}/{batches} loss {s.Loss:F4} lr {Lr(s.Lr)} {ips:F0} img/s");

        public override void EpochStarted(int epoch, int epochs, int batches, int firstBatch)
        {
            (_epoch, _epochs) = (epoch, epochs);
            _eval = null;
            _task = _ctx!.AddTask($"epoch {epoch}/{epochs}", maxValue: batches);
            _task.Value = firstBatch;
        }

        public override void StepFinished(StepRecord s, int batch, int batches, double ips)
        {
            if (_task is null) return;
            _task.Value = batch;
            _task.Description = _interrupting is string note ? Highlight(note) : Describe(s, _epochs, batch, batches, ips);
        }

        public override void Evaluating(int images, int total)
        {
            if (_ctx is null) return;
            _eval ??= _ctx.AddTask($"epoch {_epoch}/{_epochs} testing", maxValue: total);
            _eval.Value = images;
            _eval.Description = _interrupting is string note ? Highlight(note)
                : string.Create(CultureInfo.InvariantCulture, $"epoch {_epoch}/{_epochs} testing {images}/{total} images");
        }

        public override void Interrupting(string message)
        {
            _interrupting = message;
            if ((_eval ?? _task) is { IsFinished: false } task) task.Description = Highlight(message); // ProgressTask is thread-safe
            else base.Interrupting(message);
        }

        static string Highlight(string message) => $"[yellow]{Markup.Escape(Terminal.Safe(message))}[/]";

        public override void EpochFinished(EpochRecord e, bool best)
        {
            _task?.StopTask();
            _eval?.StopTask();
            console.MarkupLine(Markup.Escape(EpochLine(e, best)));
        }

        // Interpolated markup escapes its holes for Spectre (Markup.Escape), after Printable.Escape for the terminal.
        public override void Info(string message) => console.MarkupLineInterpolated($"[grey]{Terminal.Safe(message)}[/]");
    }
}
