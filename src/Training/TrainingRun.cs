using ResnetMnist.Config;
using ResnetMnist.Outputs;

namespace ResnetMnist.Training;

/// <summary>How <see cref="TrainingRun.Train"/> treats the run folder.</summary>
/// <param name="Resume">Continue the run in the folder from its last checkpoint.</param>
/// <param name="Force">Replace an existing run, or resume although result-changing keys changed.</param>
/// <param name="CommandLine">Recorded in <c>summary.json</c>.</param>
/// <param name="ToolVersion">Recorded in <c>summary.json</c>.</param>
/// <param name="WeightsProgress">Download progress of pretrained weights (bytes done, total).</param>
public sealed record RunOptions(bool Resume = false, bool Force = false, string? CommandLine = null, string? ToolVersion = null,
    IProgress<(long done, long? total)>? WeightsProgress = null);

/// <summary>
/// <c>summary.json</c>: how a run ended and what it measured. Accuracies in %, losses are mean cross-entropy, times in
/// seconds; a value that is not finite is written as <c>null</c>.
/// </summary>
/// <param name="Status"><c>completed</c>, <c>interrupted</c>, <c>diverged</c>, or <c>failed</c> (an error ended the run; written by a sweep).</param>
/// <param name="Problem">With <c>diverged</c>: what was not finite, where, and what was kept; with <c>failed</c>: the error.</param>
/// <param name="Epochs">Epochs finished (resumed runs count the earlier ones).</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="BestEpoch">Epoch of <see cref="BestTestAccuracy"/> (1-based); null before the first evaluation.</param>
/// <param name="TrainSeconds">Training time so far (evaluation excluded), an unfinished epoch's included.</param>
/// <param name="WallSeconds">This invocation's time, from start to summary.</param>
/// <param name="StartedAt">When this invocation started (UTC, ISO 8601).</param>
/// <param name="TrainImages">Images in the training split as used (after data.train_limit).</param>
/// <param name="TestImages">Images in the test split as used (after data.test_limit).</param>
/// <param name="PeakResidentMib">Peak resident memory of this invocation (Linux <c>VmHWM</c>), MiB, read as the summary is
/// written; null where the system does not report it.</param>
public sealed record RunSummary(string Status, string? Problem, int Epochs, long Steps, int? BestEpoch,
    double? FinalTrainLoss, double? FinalTestLoss, double? FinalTestAccuracy, double? BestTestAccuracy,
    double TrainSeconds, double WallSeconds, DateTime StartedAt, int TrainImages, int TestImages,
    string Arch, string Dataset, string Device, int Threads, string? CommandLine, string? ToolVersion, string Torch,
    double? PeakResidentMib = null);

/// <summary>What a run did: the trainer's result, the summary written, and the run folder.</summary>
public sealed record RunOutcome(TrainResult Result, RunSummary Summary, string RunPath);

/// <summary>
/// The "train a run" use case, the one sequence the tool, the tests and the benchmark share: check the folder (and on
/// resume the checkpoint and the config against it) before anything is created, build the session, take the run
/// folder's lock, train, then write the loss plot and <c>summary.json</c>.
/// </summary>
public static class TrainingRun
{
    /// <summary>
    /// Records in <paramref name="runPath"/>'s <c>summary.json</c> that the run failed with <paramref name="problem"/>
    /// (an error before or during training), keeping the progress of a summary already there (epochs, accuracies);
    /// writes nothing into a folder that is not this tool's. Returns the summary.
    /// </summary>
    public static RunSummary RecordFailure(TrainingConfig cfg, string runPath, string problem, DateTime started, RunOptions? options = null)
    {
        var summary = new RunSummary("failed", problem, 0, 0, null, null, null, null, null, 0, (DateTime.UtcNow - started).TotalSeconds, started,
            0, 0, cfg.Model.Arch, cfg.Data.Dataset, cfg.Device.Name(), cfg.Threads, options?.CommandLine, options?.ToolVersion, TorchSharp.torch.__version__);
        var file = Path.Combine(runPath, "summary.json");
        if (File.Exists(file))
        {
            try
            {
                var old = System.Text.Json.JsonSerializer.Deserialize<RunSummary>(RunDirectory.ReadRecord(file, "a summary.json of this tool"),
                    new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower });
                if (old is not null) summary = old with { Status = "failed", Problem = problem, WallSeconds = summary.WallSeconds, StartedAt = started };
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or IOException or NotSupportedException or RunDirectoryException) { }
        }
        RunDirectory.TryWriteSummaryOutside(runPath, summary);
        return summary;
    }

    public static RunOutcome Train(TrainingConfig cfg, string runPath, ITrainingObserver? observer = null, CancellationToken cancel = default,
        RunOptions? options = null)
    {
        options ??= new RunOptions();
        observer ??= NullObserver.Instance;
        var started = DateTime.UtcNow;
        bool resume = options.Resume;
        // Refusals first, and nothing created or changed until the config, the data, the pretrained weights and
        // (on resume) the checkpoint have all been checked.
        RunDirectory.Check(runPath, resume, options.Force);
        // A run stopped before its first checkpoint (killed in epoch 1) resumes from its start.
        bool fromStart = resume && !RunDirectory.HasCheckpoint(runPath);
        if (fromStart && cfg.Train.Save is SaveKind.Best or SaveKind.None && !options.Force)
            throw new CheckpointException($"{Path.GetFullPath(runPath)}: cannot resume: the run keeps no resumable checkpoint (train.save: {cfg.Train.Save.Name()}); train it again with --force, or use train.save: both or last for runs you may resume");
        var checkpoints = Path.Combine(Path.GetFullPath(runPath), "checkpoints");
        TrainingState? state = null;
        if (resume && !fromStart)
        {
            state = new CheckpointStore(checkpoints).ReadState();
            Trainer.CheckResumable(state.Config, ConfigSchema.ResultValues(cfg), options.Force);
        }
        using var session = Session.Create(cfg, Splits.TrainAndTest, options.WeightsProgress, observer.Info);
        session.Train.RequireImages(training: true);
        session.Test.RequireImages(training: false);
        if (state is not null)
            Trainer.ValidateState(state, cfg, session.Train.Count, Path.Combine(checkpoints, "last.json"));
        using var run = RunDirectory.Open(runPath, resume && !fromStart, options.Force);
        if (run.StaleLockNote is string note) observer.Info(note);
        if (fromStart) observer.Info($"no checkpoint in {run.Path} yet (the run stopped before its first one): training from the start");
        else if (run.RestartedWithoutCheckpoint) observer.Info($"{run.Path}: replacing a run that stopped before its first checkpoint");
        observer.Info($"run folder: {run.Path}");
        observer.Info($"device {session.Device.type}, {TorchSharp.torch.get_num_threads()} threads, {cfg.Train.Dtype.Name()}; " +
                      $"{session.Train.Count} train / {session.Test.Count} test images from {Path.GetDirectoryName(session.Train.Source)}");

        if (cfg.Train.Tensorboard) observer = new TensorBoardObserver(observer, run.File(TensorBoardObserver.FolderName));
        var result = new Trainer(session, run, observer).Run(cancel, state);
        if (result.Steps.Count > 0)
            LossPlot.Write(run.PlotFile, result.Steps, result.Epochs,
                $"{Path.GetFileName(run.Path)}: {cfg.Model.Arch}, {cfg.Optimizer.Name.Name()} lr {cfg.Optimizer.Lr}, batch {cfg.Train.BatchSize}");
        var last = result.Epochs.LastOrDefault();
        var best = result.Epochs.Where(e => e.TestAccuracy == result.BestAccuracy).Select(e => (int?)e.Epoch).FirstOrDefault();
        var summary = new RunSummary(
            Status: result.Status.ToString().ToLowerInvariant(),
            Problem: result.Problem,
            Epochs: result.Epochs.Count,
            Steps: result.Steps.Count == 0 ? 0 : result.Steps[^1].Step,
            BestEpoch: best,
            FinalTrainLoss: last?.TrainLoss,
            FinalTestLoss: last?.TestLoss,
            FinalTestAccuracy: last?.TestAccuracy,
            BestTestAccuracy: result.BestAccuracy >= 0 ? result.BestAccuracy : null,
            TrainSeconds: result.TrainSeconds,
            WallSeconds: (DateTime.UtcNow - started).TotalSeconds,
            StartedAt: started,
            TrainImages: session.Train.Count,
            TestImages: session.Test.Count,
            Arch: session.Arch.Name,
            Dataset: session.Dataset.Name,
            Device: session.Device.type.ToString().ToLowerInvariant(),
            Threads: TorchSharp.torch.get_num_threads(),
            CommandLine: options.CommandLine,
            ToolVersion: options.ToolVersion,
            Torch: TorchSharp.torch.__version__,
            PeakResidentMib: ProcessMemory.PeakResidentMiB());
        run.WriteSummary(summary);
        return new RunOutcome(result, summary, run.Path);
    }
}
