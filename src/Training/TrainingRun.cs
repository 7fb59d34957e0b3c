using ResnetMnist.Config;
using ResnetMnist.Outputs;

namespace ResnetMnist.Training;

/// <summary>How <see cref="TrainingRun.Train"/> treats the run folder.</summary>
/// <param name="Resume">Continue the run in the folder from its last checkpoint.</param>
/// <param name="Force">Replace an existing run, or resume although result-changing keys changed.</param>
/// <param name="CommandLine">Recorded in <c>summary.json</c>.</param>
/// <param name="ToolVersion">Recorded in <c>summary.json</c>.</param>
/// <param name="WeightsProgress">Download progress of pretrained weights (bytes done, total).</param>
/// <param name="Abandon">Fires when the process is about to end at once (a second Ctrl-C): the run then writes its
/// <c>summary.json</c> from its last checkpoint and releases its lock, on the thread that fires it, before returning.</param>
public sealed record RunOptions(bool Resume = false, bool Force = false, string? CommandLine = null, string? ToolVersion = null,
    IProgress<(long done, long? total)>? WeightsProgress = null, CancellationToken Abandon = default);

/// <summary>
/// <c>summary.json</c>: how a run ended and what it measured. Accuracies in %, losses are mean cross-entropy, times in
/// seconds; a value that is not finite is written as <c>null</c>.
/// </summary>
/// <param name="Status"><c>completed</c>, <c>interrupted</c>, <c>diverged</c>, or <c>failed</c> (an error ended the run; written by a sweep).</param>
/// <param name="Problem">With <c>diverged</c>: what was not finite, where, and what was kept; with <c>failed</c>: the error.</param>
/// <param name="Epochs">Epochs finished (resumed runs count the earlier ones).</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="BestEpoch">The best epoch (1-based), the one <c>best.pt</c> holds: highest validation accuracy with a
/// validation split, else highest test accuracy (<see cref="BestChosenOn"/>); null before the first evaluation.</param>
/// <param name="BestTestAccuracy">Test accuracy of <see cref="BestEpoch"/>. Without a validation split the best epoch
/// was chosen on the test set itself, so this is not a held-out result; with one it is.</param>
/// <param name="TrainSeconds">Training time so far (evaluation excluded), an unfinished epoch's included.</param>
/// <param name="WallSeconds">This invocation's time, from start to summary.</param>
/// <param name="StartedAt">When this invocation started (UTC, ISO 8601).</param>
/// <param name="TrainImages">Images trained on (after data.train_limit, without the validation part).</param>
/// <param name="TestImages">Images in the test split as used (after data.test_limit).</param>
/// <param name="BestChosenOn"><c>test</c> (no validation split: the reference's behaviour) or <c>validation</c>.</param>
/// <param name="ValImages">Images held out for validation (<c>data.val_split</c>); null without a split.</param>
/// <param name="BestValAccuracy">Validation accuracy of <see cref="BestEpoch"/>, the highest; null without a split.</param>
/// <param name="StoppedEarly">True when <c>train.early_stop_patience</c> ended training before <c>train.epochs</c>.</param>
/// <param name="KernelSet">The CPU kernel set libtorch ran with (<c>default</c>, <c>avx2</c>, <c>avx512</c>; <c>ATEN_CPU_CAPABILITY</c> or the CPU's): float32 results depend on it.</param>
/// <param name="CpuModel">The CPU's model name (<c>/proc/cpuinfo</c>).</param>
/// <param name="PeakMemoryMib">Peak resident memory of the process (<c>VmHWM</c>), MiB.</param>
/// <param name="ThreadWait">How libtorch's pool threads waited for work (the wait setting, and why: the user's or the tool's choice for the load at start).</param>
/// <param name="WeightsSource"><c>model.pretrained</c> as configured: <c>none</c>, <c>torchvision</c>, <c>mlnet</c> or a path.</param>
/// <param name="WeightsFile">The pretrained weights file loaded (the torch.hub file, the mlnet conversion, or the path); null with none.</param>
/// <param name="WeightsSha256">sha256 of <see cref="WeightsFile"/>.</param>
/// <param name="InitFrom"><c>model.init_from</c>: the warm-start file; null with none.</param>
/// <param name="InitFromSha256">sha256 of <see cref="InitFrom"/>.</param>
public sealed record RunSummary(string Status, string? Problem, int Epochs, long Steps, int? BestEpoch,
    double? FinalTrainLoss, double? FinalTestLoss, double? FinalTestAccuracy, double? BestTestAccuracy,
    double TrainSeconds, double WallSeconds, DateTime StartedAt, int TrainImages, int TestImages,
    string Arch, string Dataset, string Device, int Threads, string? CommandLine, string? ToolVersion, string Torch,
    string BestChosenOn = "test", int? ValImages = null, double? BestValAccuracy = null, bool StoppedEarly = false,
    string? KernelSet = null, string? CpuModel = null, double? PeakMemoryMib = null, string? ThreadWait = null,
    string? WeightsSource = null, string? WeightsFile = null, string? WeightsSha256 = null, string? InitFrom = null, string? InitFromSha256 = null,
    IReadOnlyList<string>? ClassNames = null);

/// <summary>What a run did: the trainer's result, the summary written, and the run folder.</summary>
public sealed record RunOutcome(TrainResult Result, RunSummary Summary, string RunPath)
{
    /// <summary>A resume found the run already at <c>train.epochs</c>: nothing was trained or written
    /// (<see cref="Summary"/> describes the run as its checkpoint records it).</summary>
    public bool AlreadyComplete { get; init; }
}

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
            0, 0, cfg.Model.Arch.Name, cfg.Data.Dataset.Name, cfg.Device.Name(), cfg.Threads, options?.CommandLine, options?.ToolVersion, TorchSharp.torch.__version__);
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

    /// <summary>sha256 (lowercase hex) of <paramref name="file"/>, read now; null when there is no file.</summary>
    static string? Sha256(string? file)
    {
        if (file is null || !File.Exists(file)) return null;
        using var f = InputFiles.OpenRead(file, "a weights file", ResnetMnist.Weights.TorchArchive.MaxFileBytes,
            m => new ResnetMnist.Weights.WeightsFileException(file, m));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
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
        bool fromCheckpoint = resume && !fromStart;
        using var session = Session.Create(cfg, Splits.TrainAndTest, options.WeightsProgress, observer.Info, resuming: fromCheckpoint);
        session.Train.RequireImages(training: true);
        session.Test.RequireImages(training: false);
        var store = new CheckpointStore(Path.Combine(Path.GetFullPath(runPath), "checkpoints"));
        var state = fromCheckpoint ? store.ReadState(cfg, session.Train.Count, options.Force) : null;
        RunSummary Summary(string status, string? problem, IReadOnlyList<EpochRecord> epochs, long steps, int? bestEpoch, double trainSeconds,
            bool stoppedEarly = false) => Summarize(status, problem, epochs, steps, bestEpoch, trainSeconds, stoppedEarly, started, session, options);
        if (state is not null && state.Complete(cfg))
        {
            var done = new TrainResult(RunStatus.Completed, [], state.Epochs ?? [], state.BestAccuracy, TrainSeconds: state.Epochs?.Sum(e => e.EpochSeconds) ?? 0, BestEpoch: state.BestEpoch);
            return new RunOutcome(done, Summary("completed", null, done.Epochs, state.GlobalStep, state.BestEpoch, done.TrainSeconds),
                Path.GetFullPath(runPath)) { AlreadyComplete = true };
        }
        using var run = RunDirectory.Open(runPath, fromCheckpoint, options.Force);
        // A second Ctrl-C ends the process at once: the summary then says what the last checkpoint holds, and the lock goes.
        using var abandoned = options.Abandon.Register(() =>
        {
            var kept = store.TryReadWritten();
            run.WriteSummary(Summary("interrupted", kept is null
                    ? "abandoned (a second interrupt): stopped at once, before the first checkpoint; train it again"
                    : $"abandoned (a second interrupt): stopped at once; resume continues from the last checkpoint (epoch {kept.EpochsDone + 1}, batch {kept.BatchesDone + 1}, step {kept.GlobalStep})",
                kept?.Epochs ?? [], kept?.GlobalStep ?? 0, kept?.BestEpoch, kept?.Epochs?.Sum(e => e.EpochSeconds) ?? 0));
            run.Dispose();
        });
        if (run.StaleLockNote is string note) observer.Info(note);
        if (fromStart) observer.Info($"no checkpoint in {run.Path} yet (the run stopped before its first one): training from the start");
        else if (run.RestartedWithoutCheckpoint) observer.Info($"{run.Path}: replacing a run that stopped before its first checkpoint");
        observer.Info($"run folder: {run.Path}");
        observer.Info($"device {session.Device.type}, {TorchSharp.torch.get_num_threads()} threads, {cfg.Train.Dtype.Name()}; " +
                      $"{session.Train.Count} train{(session.Validation is { } v ? $" / {v.Count} validation (data.val_split {cfg.Data.ValSplit.ToString(System.Globalization.CultureInfo.InvariantCulture)})" : "")} / {session.Test.Count} test images from {Path.GetDirectoryName(session.Train.Source)}");

        if (cfg.Train.Tensorboard) observer = new TensorBoardObserver(observer, run.File(RunDirectory.TensorBoardFolder));
        TrainResult result;
        try { result = new Trainer(session, run, observer).Run(cancel, state); }
        catch (Exception e) when (e is not BadInputException)
        {
            // An error ends the run: the summary says so (with the epochs of its last checkpoint), the lock goes with `run`.
            // A refused input (a checkpoint that cannot be loaded) changes nothing in the folder: no summary either.
            var kept = store.TryReadWritten() ?? state;
            try
            {
                run.WriteSummary(Summary("failed", ResnetMnist.Weights.TorchArchive.FirstLine(e.Message), kept?.Epochs ?? [], kept?.GlobalStep ?? 0,
                    kept?.BestEpoch, kept?.Epochs?.Sum(x => x.EpochSeconds) ?? 0));
            }
            catch (Exception w) when (w is IOException or UnauthorizedAccessException) { } // the error that ended the run is the one to report
            throw;
        }
        if (result.Steps.Count > 0 || result.DivergedAtStep is not null)
            LossPlot.Write(run.PlotFile, result.Steps, result.Epochs, $"{Path.GetFileName(run.Path)}: {LossPlot.Describe(cfg)}",
                result.DivergedAtStep is long at ? new LossPlot.Divergence(at) : null);
        var summary = Summary(result.Status.ToString().ToLowerInvariant(), result.Problem, result.Epochs,
            result.Steps.Count == 0 ? 0 : result.Steps[^1].Step, result.BestEpoch, result.TrainSeconds, result.StoppedEarly);
        run.WriteSummary(summary);
        return new RunOutcome(result, summary, run.Path);
    }

    /// <summary>The <c>summary.json</c> of a run of <paramref name="session"/> that ended with <paramref name="status"/>.</summary>
    static RunSummary Summarize(string status, string? problem, IReadOnlyList<EpochRecord> epochs, long steps, int? bestEpoch,
        double trainSeconds, bool stoppedEarly, DateTime started, Session session, RunOptions options)
    {
        var last = epochs.LastOrDefault();
        var best = epochs.FirstOrDefault(e => e.Epoch == bestEpoch);
        var cfg = session.Config;
        return new RunSummary(
            Status: status,
            Problem: problem,
            Epochs: epochs.Count,
            Steps: steps,
            BestEpoch: best?.Epoch,
            FinalTrainLoss: last?.TrainLoss,
            FinalTestLoss: last?.TestLoss,
            FinalTestAccuracy: last?.TestAccuracy,
            BestTestAccuracy: best?.TestAccuracy,
            TrainSeconds: trainSeconds,
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
            BestChosenOn: session.Validation is null ? "test" : "validation",
            ValImages: session.Validation?.Count,
            BestValAccuracy: best?.ValAccuracy,
            StoppedEarly: stoppedEarly,
            KernelSet: ResnetMnist.Native.KernelSet.Current,
            CpuModel: ResnetMnist.Native.MachineInfo.CpuModel(),
            PeakMemoryMib: ResnetMnist.Native.MachineInfo.ProcStatusMiB("VmHWM"),
            ThreadWait: ResnetMnist.Native.NativeLoader.WaitPolicy,
            WeightsSource: cfg.Model.Pretrained.Text,
            WeightsFile: session.PretrainedFile is string wf ? Path.GetFullPath(wf) : null,
            WeightsSha256: Sha256(session.PretrainedFile),
            InitFrom: cfg.Model.InitFrom is string init ? Path.GetFullPath(init) : null,
            InitFromSha256: Sha256(cfg.Model.InitFrom),
            ClassNames: Data.ClassNames.For(session.Dataset, cfg.Model.NumClasses));
    }
}
