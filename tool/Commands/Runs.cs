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
        // Refusals first, and nothing created or changed until the config, the data, the pretrained weights and
        // (on resume) the checkpoint have all been checked.
        RunDirectory.Check(runPath, resume, force);
        // A run stopped before its first checkpoint (killed in epoch 1) resumes from its start.
        bool fromStart = resume && !RunDirectory.HasCheckpoint(runPath);
        TrainingState? state = null;
        if (resume && !fromStart)
        {
            state = new CheckpointStore(Path.Combine(Path.GetFullPath(runPath), "checkpoints")).ReadState();
            Trainer.CheckResumable(state.Config, Trainer.ResultKeys(cfg), force);
        }
        using var signals = new InterruptSignals();
        using var session = TrainingSession.Create(cfg, log: Console.WriteLine, progress: DownloadProgress());
        session.Train.RequireImages(training: true);
        session.Test.RequireImages(training: false);
        if (state is not null)
            Trainer.ValidateState(state, cfg, session.Train.Count, Path.Combine(Path.GetFullPath(runPath), "checkpoints", "last.json"));
        using var run = RunDirectory.Open(runPath, resume && !fromStart, force);
        var observer = Progress.Create(quiet, cfg.Train.LogEvery);
        if (run.StaleLockNote is string note) observer.Info(note);
        if (fromStart) observer.Info($"no checkpoint in {run.Path} yet (the run stopped before its first one): training from the start");
        else if (run.RestartedWithoutCheckpoint) observer.Info($"{run.Path}: replacing a run that stopped before its first checkpoint");
        observer.Info($"run folder: {run.Path}");
        observer.Info($"device {session.Device.type}, {TorchSharp.torch.get_num_threads()} threads, {cfg.Train.Dtype}; " +
                      $"{session.Train.Count} train / {session.Test.Count} test images from {Path.GetDirectoryName(session.Train.Source)}");
        var started = DateTime.UtcNow;
        var result = observer.Wrap(() => new Trainer(session, run, observer).Run(signals.Token, resume && !fromStart, force, state));
        if (result.Steps.Count > 0)
            LossPlot.Write(run.PlotFile, result.Steps, result.Epochs, $"{Path.GetFileName(run.Path)}: {cfg.Model.Arch}, {cfg.Optimizer.Name} lr {cfg.Optimizer.Lr}, batch {cfg.Train.BatchSize}");
        var last = result.Epochs.LastOrDefault();
        run.WriteSummary(new
        {
            Status = result.Status.ToString().ToLowerInvariant(),
            Problem = result.Problem,
            Epochs = result.Epochs.Count,
            Steps = result.Steps.Count,
            FinalTrainLoss = last?.TrainLoss,
            FinalTestLoss = last?.TestLoss,
            FinalTestAccuracy = last?.TestAccuracy,
            BestTestAccuracy = result.BestAccuracy >= 0 ? result.BestAccuracy : (double?)null,
            TrainSeconds = result.Epochs.Sum(e => e.EpochSeconds),
            WallSeconds = (DateTime.UtcNow - started).TotalSeconds,
            Device = session.Device.type.ToString().ToLowerInvariant(),
            Threads = TorchSharp.torch.get_num_threads(),
            ToolVersion = ToolInfo.Version,
            Torch = TorchSharp.torch.__version__,
        });
        if (result.Status == RunStatus.Diverged)
            throw new DivergedException(result.Problem!);
        if (result.Status == RunStatus.Interrupted)
        {
            try
            {
                Console.Error.WriteLine($"interrupted after step {result.Steps.Count}; resume with: dotnet resnet-mnist train --resume {run.Path}");
            }
            catch (IOException) { } // a hung-up terminal (SIGHUP)
            return signals.ExitCode;
        }
        if (last is not null)
            AnsiConsole.MarkupLineInterpolated($"[green]done[/]: epoch {last.Epoch}, train loss {last.TrainLoss:F4}, test accuracy {last.TestAccuracy:F2}% → {run.Path}");
        return ErrorHandling.Ok;
    }
}
