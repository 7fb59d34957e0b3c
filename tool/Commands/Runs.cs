using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console;

namespace ResnetMnist.Tool.Commands;

/// <summary>One training run from the command line: run folder, Ctrl-C handling, progress, plot, summary.</summary>
static class Runs
{
    /// <summary>Progress of a pretrained-weights download, on stderr, one updating line.</summary>
    static IProgress<(long done, long? total)> DownloadProgress()
    {
        long lastMiB = -1;
        return new Progress<(long done, long? total)>(p =>
        {
            long mib = p.done >> 20;
            if (mib == lastMiB) return;
            lastMiB = mib;
            Console.Error.Write(p.total is long t ? $"\rdownloading weights: {mib} / {t >> 20} MiB" : $"\rdownloading weights: {mib} MiB");
            if (p.total is long total && p.done >= total) Console.Error.WriteLine();
        });
    }

    public static int Train(TrainingConfig cfg, string runPath, bool resume, bool force, bool quiet)
    {
        using var signals = new InterruptSignals();
        var outcome = Execute(cfg, runPath, resume, force, quiet, signals);
        var (result, summary, path) = outcome;
        if (outcome.AlreadyComplete)
        {
            Terminal.Out($"{path}: already complete at {summary.Epochs} epochs (train.epochs {cfg.Train.Epochs}); to train on: " +
                         $"{ToolCommand.Name} train --resume {path} --set train.epochs={cfg.Train.Epochs + 1}");
            return ErrorHandling.Ok;
        }
        if (result.Status == RunStatus.Diverged)
            throw new DivergedException(result.Problem!);
        if (result.Status == RunStatus.Interrupted)
        {
            ReportInterrupted(result, path);
            return signals.ExitCode;
        }
        var last = result.Epochs.LastOrDefault();
        if (last is not null)
            Done($"epoch {last.Epoch}, train loss {last.TrainLoss:F4}, test loss {last.TestLoss:F4}, test accuracy {last.TestAccuracy:F2}%", path);
        return ErrorHandling.Ok;
    }

    /// <summary>One run through <see cref="TrainingRun.Train"/> with the tool's progress display; a diverged run is returned, not thrown.</summary>
    public static RunOutcome Execute(TrainingConfig cfg, string runPath, bool resume, bool force, bool quiet, InterruptSignals signals) =>
        Execute(cfg, runPath, Options(resume, force), quiet, signals);

    /// <summary>As above, with the run's options given.</summary>
    public static RunOutcome Execute(TrainingConfig cfg, string runPath, RunOptions options, bool quiet, InterruptSignals signals)
    {
        var observer = Progress.Create(quiet, cfg.Train.LogEvery);
        signals.Notice = observer.Interrupting;
        options = options with { Abandon = signals.Abandoning };
        return observer.Wrap(() => TrainingRun.Train(cfg, runPath, observer, signals.Token, options));
    }

    public static RunOptions Options(bool resume, bool force) =>
        new(resume, force, string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), ToolInfo.Version, DownloadProgress());

    public static void ReportInterrupted(TrainResult result, string path)
    {
        try
        {
            Terminal.Err($"interrupted after step {result.Steps.Count}; resume with: {ToolCommand.Name} train --resume {path}");
        }
        catch (IOException) { } // a hung-up terminal (SIGHUP)
    }

    /// <summary>The final line: green on a terminal; plain text, never wrapped (the path stays whole), when redirected.</summary>
    public static void Done(string what, string path)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Ansi)
            Terminal.Out($"done: {what} → {path}");
        else
            AnsiConsole.MarkupLineInterpolated($"[green]done[/]: {Terminal.Safe(what)} → {Terminal.Safe(path)}");
    }
}
