using System.Diagnostics;
using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>How a run ended.</summary>
public enum RunStatus { Completed, Interrupted, Diverged }

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
/// <param name="Problem">With <see cref="RunStatus.Diverged"/>: what was not finite, where, and what was kept.</param>
/// <param name="TrainSeconds">Training time of the whole run so far (evaluation excluded), the unfinished epoch's included.</param>
/// <param name="DivergedAtStep">With <see cref="RunStatus.Diverged"/>: the global step at which something stopped being finite.</param>
public sealed record TrainResult(RunStatus Status, IReadOnlyList<StepRecord> Steps, IReadOnlyList<EpochRecord> Epochs, double BestAccuracy,
    string? Problem = null, double TrainSeconds = 0, long? DivergedAtStep = null);

/// <summary>Training stopped because the loss became NaN or infinite; the last good checkpoint is kept.</summary>
public sealed class DivergedException(string message) : Exception(message);

/// <summary>
/// A run of the reference's training loop (<see cref="TrainingLoop"/>) with what the reference does around it and
/// what a run keeps: after every epoch an evaluation on the test split, then a checkpoint (and when cancelled, a
/// resumable one); steps.csv, metrics.csv and the observer's progress; a stop with the last good checkpoint kept when
/// the loss or the weights stop being finite. Resumes from a checkpoint exactly: where training stands is one
/// <see cref="TrainingState"/> value, which the checkpoint writes and reads whole.
/// </summary>
public sealed class Trainer(Session session, RunDirectory run, ITrainingObserver observer)
{
    readonly TrainingConfig _cfg = session.Config;

    /// <summary>Trains to the end or until <paramref name="cancel"/> fires (then a resumable checkpoint is written).</summary>
    /// <param name="resumeFrom">The checkpoint state to continue from (already checked by <see cref="TrainingRun"/>); null: from the start.</param>
    public TrainResult Run(CancellationToken cancel, TrainingState? resumeFrom = null)
    {
        var model = session.Model;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = Optimizers.Create(_cfg.Optimizer, parameters);
        var store = new CheckpointStore(run.Checkpoints, Weights.CheckpointModel.From(_cfg)) { ClassNames = Data.ClassNames.For(_cfg) };

        var steps = new List<StepRecord>();
        var epochs = new List<EpochRecord>();
        if (resumeFrom is not null)
        {
            store.Load(model, optimizer);
            if (NonFinite(model) is string bad)
                throw new CheckpointException($"{store.LastWeights}: {bad} holds NaN or infinite values: this checkpoint diverged; train again from the start (--force) with a lower optimizer.lr");
            CheckpointStore.RestoreRng(resumeFrom.RngState);
            if (File.Exists(run.StepsFile)) steps.AddRange(RunDirectory.ReadSteps(run.StepsFile).Where(s => s.Step <= resumeFrom.GlobalStep));
            if (File.Exists(run.MetricsFile)) epochs.AddRange(RunDirectory.ReadMetrics(run.MetricsFile).Where(e => e.Epoch <= resumeFrom.EpochsDone));
            observer.Info($"resuming {run.Path} at epoch {resumeFrom.EpochsDone + 1}, batch {resumeFrom.BatchesDone + 1} (step {resumeFrom.GlobalStep})");
        }
        run.WriteConfig(_cfg);
        using var log = run.OpenStepsLog(steps);
        var flushed = Stopwatch.StartNew();
        var loop = new TrainingLoop(session, optimizer, resumeFrom);
        // Training time of the whole run: finished epochs, the unfinished one's so far, and an epoch just ended but not yet recorded.
        double Seconds(double ending = 0) => epochs.Sum(e => e.EpochSeconds) + loop.EpochSecondsSoFar + ending;

        foreach (var e in loop.Run(cancel))
        {
            switch (e)
            {
                case EpochStarted start:
                    observer.EpochStarted(start.Epoch, _cfg.Train.Epochs, start.Batches, start.FirstBatch);
                    break;

                case StepDone step:
                    var record = step.Record;
                    if (!double.IsFinite(record.Loss))
                        return Diverge(store, log, steps, epochs, loop.State.BestAccuracy,
                            $"loss is {record.Loss.ToString(CultureInfo.InvariantCulture)} at step {record.Step} (epoch {record.Epoch}, batch {step.Batch})", Seconds(), record.Step);
                    steps.Add(record);
                    log.Append(record);
                    if (flushed.Elapsed.TotalSeconds >= _cfg.Train.LogEvery) { log.Flush(); flushed.Restart(); }
                    observer.StepFinished(record, step.Batch, step.Batches, step.ImagesPerSecond);
                    break;

                case EpochDone done:
                    log.Flush();
                    var eval = Evaluator.Run(model, session.Test, _cfg.Train.EvalBatchSize, _cfg.Model.NumClasses,
                        images => observer.Evaluating(images, session.Test.Count));
                    loop.TrainMode();
                    // Nothing non-finite becomes a checkpoint: weights that overflowed at the epoch's last step (or stay finite
                    // but are so large that the test loss is NaN) end the run as diverged, and the previous checkpoint stays.
                    string? problem = NonFinite(model) is string weight ? $"weight {weight} is not finite"
                        : !double.IsFinite(eval.Loss) ? $"test loss is {eval.Loss.ToString(CultureInfo.InvariantCulture)}"
                        : !double.IsFinite(done.TrainLoss) ? $"train loss is {done.TrainLoss.ToString(CultureInfo.InvariantCulture)}"
                        : null;
                    if (problem is not null)
                        return Diverge(store, log, steps, epochs, loop.State.BestAccuracy,
                            $"{problem} after epoch {done.Epoch} (step {loop.State.GlobalStep})", Seconds(done.Seconds), loop.State.GlobalStep);
                    bool isBest = eval.Accuracy > loop.State.BestAccuracy;
                    if (isBest) loop.RecordBestAccuracy(eval.Accuracy);
                    var er = new EpochRecord(done.Epoch, done.TrainLoss, eval.Loss, eval.Accuracy, done.Lr, done.Seconds, done.ImagesPerSecond);
                    epochs.Add(er);
                    SaveCheckpoint(store, log, optimizer, loop.State, isBest, epochs);
                    observer.EpochFinished(er, isBest);
                    break;
            }
        }
        var state = loop.State;
        if (!loop.Interrupted) return new TrainResult(RunStatus.Completed, steps, epochs, state.BestAccuracy, TrainSeconds: Seconds());

        if (NonFinite(model) is string nonFinite)
            return Diverge(store, log, steps, epochs, state.BestAccuracy,
                $"weight {nonFinite} is not finite after step {state.GlobalStep} (epoch {state.EpochsDone + 1}, batch {state.BatchesDone})", Seconds(), state.GlobalStep);
        double seconds = Seconds();
        SaveCheckpoint(store, log, optimizer, loop.Paused, isBest: false, epochs);
        return new TrainResult(RunStatus.Interrupted, steps, epochs, state.BestAccuracy, TrainSeconds: seconds);
    }

    /// <summary>The first weight or buffer of <paramref name="model"/> that holds a NaN or an infinity; null when all are finite.</summary>
    public static string? NonFinite(nn.Module model) => ResnetMnist.Weights.StateDictChecks.FirstNonFinite(model.state_dict());

    /// <summary>Ends a diverged run: steps.csv so far is written, checkpoints stay as they were.</summary>
    TrainResult Diverge(CheckpointStore store, RunDirectory.StepsLog log, List<StepRecord> steps, List<EpochRecord> epochs, double best, string what, double seconds, long step)
    {
        log.Flush();
        var kept = File.Exists(store.LastState)
            ? $"the last good checkpoint is kept in {store.Folder} (resume from it with a lower optimizer.lr and --force)"
            : "no checkpoint had been written yet";
        return new TrainResult(RunStatus.Diverged, steps, epochs, best, $"{what}; training stopped, {kept}; try a lower optimizer.lr", seconds, step);
    }

    /// <summary>
    /// Checks a resume's <c>last.json</c> against the run it continues: epochs and batches within the config's
    /// range, the global step consistent with them, finite sums. Throws a <see cref="CheckpointException"/> naming
    /// the file and the field.
    /// </summary>
    public static void ValidateState(TrainingState s, TrainingConfig cfg, int trainImages, string file)
    {
        void Bad(string field, string problem) =>
            throw new CheckpointException($"{file}: {field} {problem}; the checkpoint state was edited or is damaged (train again with --force)");
        int epochs = cfg.Train.Epochs, batches = TrainingLoop.BatchesPerEpoch(trainImages, cfg.Train.BatchSize);
        if (s.EpochsDone < 0 || s.EpochsDone > epochs) Bad("epochs_done", $"is {s.EpochsDone}; allowed: 0..{epochs} (train.epochs)");
        if (s.BatchesDone < 0 || s.BatchesDone >= batches) Bad("batches_done", $"is {s.BatchesDone}; allowed: 0..{batches - 1} ({batches} batches per epoch)");
        if (s.BatchesDone > 0 && !s.OrderDrawn) Bad("batches_done", $"is {s.BatchesDone} but order_drawn is false (no epoch in progress)");
        if (s.EpochsDone == epochs && (s.BatchesDone > 0 || s.OrderDrawn)) Bad("batches_done", $"is {s.BatchesDone} (order_drawn {s.OrderDrawn}) after the last epoch");
        if (s.GlobalStep < 0) Bad("global_step", $"is {s.GlobalStep}; allowed: >= 0");
        // With the same batches per epoch (same data and batch size) every epoch took exactly `batches` steps.
        var now = ConfigSchema.ResultValues(cfg);
        bool sameShape = new[] { "train.batch_size", "data.train_limit", "data.dataset", "data.root" }
            .All(k => s.Config is not null && s.Config.TryGetValue(k, out var v) && v == now[k]);
        long expected = (long)s.EpochsDone * batches + s.BatchesDone;
        if (sameShape && s.GlobalStep != expected)
            Bad("global_step", $"is {s.GlobalStep}, but epochs_done {s.EpochsDone} × {batches} batches + batches_done {s.BatchesDone} = {expected}");
        if (!sameShape && s.GlobalStep < s.EpochsDone + (long)s.BatchesDone)
            Bad("global_step", $"is {s.GlobalStep}, fewer than epochs_done {s.EpochsDone} + batches_done {s.BatchesDone}");
        if (!double.IsFinite(s.EpochLossSum)) Bad("epoch_loss_sum", "is not a finite number");
        if (!(s.BestAccuracy == -1 || s.BestAccuracy is >= 0 and <= 100)) Bad("best_accuracy", $"is {s.BestAccuracy.ToString(CultureInfo.InvariantCulture)}; allowed: -1 (none yet) or 0..100");
        if (string.IsNullOrEmpty(s.RngState) || !Convert.TryFromBase64String(s.RngState, new byte[s.RngState.Length], out _))
            Bad("rng_state", "is not the base64 of a generator state");
    }

    void SaveCheckpoint(CheckpointStore store, RunDirectory.StepsLog log, OptimizerHelper optimizer, TrainingState state, bool isBest, List<EpochRecord> epochs)
    {
        log.Flush();
        run.WriteMetrics(epochs);
        store.Save(session.Model, optimizer, state with { RngState = CheckpointStore.RngState() }, isBest, _cfg.Train.Save);
    }

    /// <summary>
    /// Throws a <see cref="CheckpointException"/> when <paramref name="now"/> changes a value of a result-changing key
    /// (<see cref="ConfigSchema.ResultValues"/>) that <paramref name="saved"/> recorded, or one it did not record (a
    /// checkpoint of an older version), unless forced.
    /// </summary>
    public static void CheckResumable(IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string> now, bool force)
    {
        var changed = now.Where(kv => !saved.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Select(kv => saved.TryGetValue(kv.Key, out var v) ? $"{kv.Key} was '{v}', now '{kv.Value}'" : $"{kv.Key} was not recorded, now '{kv.Value}'").ToList();
        if (changed.Count > 0 && !force)
            throw new CheckpointException($"the config changed in ways that alter the result ({string.Join("; ", changed)}); use the run's own config.yaml, or --force to resume anyway");
    }
}
