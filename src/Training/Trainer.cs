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
/// <param name="BestAccuracy">The best epoch's accuracy (%) on the split that chooses it (<see cref="EpochRecord.SelectionAccuracy"/>); -1 before the first evaluation.</param>
/// <param name="BestEpoch">The epoch (1-based) of <paramref name="BestAccuracy"/>; null before the first evaluation.</param>
/// <param name="DivergedAtStep">With <see cref="RunStatus.Diverged"/>: the global step at which something stopped being finite.</param>
/// <param name="StoppedEarly">Training stopped before <c>train.epochs</c> because <c>train.early_stop_patience</c> epochs brought no higher validation accuracy.</param>
public sealed record TrainResult(RunStatus Status, IReadOnlyList<StepRecord> Steps, IReadOnlyList<EpochRecord> Epochs, double BestAccuracy,
    string? Problem = null, double TrainSeconds = 0, int? BestEpoch = null, bool StoppedEarly = false, long? DivergedAtStep = null);

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
        var store = new CheckpointStore(run.Checkpoints, _cfg.ModelRecord()) { ClassNames = Data.ClassNames.For(session.Dataset, _cfg.Model.NumClasses) };

        var steps = new List<StepRecord>();
        var epochs = new List<EpochRecord>();
        if (resumeFrom is not null)
        {
            store.Load(model, optimizer);
            if (NonFinite(model) is string bad)
                throw new CheckpointException($"{store.LastWeights}: {bad} holds NaN or infinite values: this checkpoint diverged; train again from the start (--force) with a lower optimizer.lr");
            CheckpointStore.RestoreRng(resumeFrom);
            // The step log is steps.csv (appended live, cut back to the checkpoint's step); the epochs are the checkpoint's own.
            if (File.Exists(run.StepsFile)) steps.AddRange(RunDirectory.ReadSteps(run.StepsFile).Where(s => s.Step <= resumeFrom.GlobalStep));
            epochs.AddRange(resumeFrom.Epochs ?? []);
            if (resumeFrom.BatchesDone == 0 && resumeFrom.EpochsDone < _cfg.Train.Epochs && EarlyStop(epochs, resumeFrom.BestEpoch) is string stopped)
            {
                observer.Info(stopped);
                return new TrainResult(RunStatus.Completed, steps, epochs, resumeFrom.BestAccuracy, TrainSeconds: epochs.Sum(e => e.EpochSeconds),
                    BestEpoch: resumeFrom.BestEpoch, StoppedEarly: true);
            }
            observer.Info($"resuming {run.Path} at epoch {resumeFrom.EpochsDone + 1}, batch {resumeFrom.BatchesDone + 1} (step {resumeFrom.GlobalStep})");
        }
        run.WriteConfig(ConfigSchema.ToYaml(_cfg));
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
                        return Diverge(store, log, steps, epochs, loop.State,
                            $"loss is {record.Loss.ToString(CultureInfo.InvariantCulture)} at step {record.Step} (epoch {record.Epoch}, batch {step.Batch})", Seconds(), record.Step);
                    steps.Add(record);
                    log.Append(record);
                    if (flushed.Elapsed.TotalSeconds >= _cfg.Train.LogEvery) { log.Flush(); flushed.Restart(); }
                    observer.StepFinished(record, step.Batch, step.Batches, step.ImagesPerSecond);
                    break;

                case EpochDone done:
                    log.Flush();
                    // With a validation split the reference evaluates it first, then the test set (for the report only).
                    var val = session.Validation is { } v ? Evaluator.Run(model, v, _cfg.Train.EvalBatchSize, _cfg.Model.NumClasses) : null;
                    var eval = Evaluator.Run(model, session.Test, _cfg.Train.EvalBatchSize, _cfg.Model.NumClasses,
                        images => observer.Evaluating(images, session.Test.Count));
                    loop.TrainMode();
                    // Nothing non-finite becomes a checkpoint: weights that overflowed at the epoch's last step (or stay finite
                    // but are so large that the test loss is NaN) end the run as diverged, and the previous checkpoint stays.
                    string? problem = NonFinite(model) is string weight ? $"weight {weight} is not finite"
                        : !double.IsFinite(eval.Loss) ? $"test loss is {eval.Loss.ToString(CultureInfo.InvariantCulture)}"
                        : val is not null && !double.IsFinite(val.Loss) ? $"validation loss is {val.Loss.ToString(CultureInfo.InvariantCulture)}"
                        : !double.IsFinite(done.TrainLoss) ? $"train loss is {done.TrainLoss.ToString(CultureInfo.InvariantCulture)}"
                        : null;
                    if (problem is not null)
                        return Diverge(store, log, steps, epochs, loop.State,
                            $"{problem} after epoch {done.Epoch} (step {loop.State.GlobalStep})", Seconds(done.Seconds), loop.State.GlobalStep);
                    var er = new EpochRecord(done.Epoch, done.TrainLoss, eval.Loss, eval.Accuracy, done.Lr, done.Seconds, done.ImagesPerSecond,
                        val?.Loss, val?.Accuracy);
                    bool isBest = er.SelectionAccuracy > loop.State.BestAccuracy;
                    if (isBest) loop.RecordBest(done.Epoch, er.SelectionAccuracy);
                    epochs.Add(er);
                    SaveCheckpoint(store, log, optimizer, loop.State, isBest, epochs);
                    observer.EpochFinished(er, isBest);
                    if (done.Epoch < _cfg.Train.Epochs && EarlyStop(epochs, loop.State.BestEpoch) is string stop)
                    {
                        observer.Info(stop);
                        return new TrainResult(RunStatus.Completed, steps, epochs, loop.State.BestAccuracy, TrainSeconds: Seconds(), BestEpoch: loop.State.BestEpoch, StoppedEarly: true);
                    }
                    break;
            }
        }
        var state = loop.State;
        if (!loop.Interrupted) return new TrainResult(RunStatus.Completed, steps, epochs, state.BestAccuracy, TrainSeconds: Seconds(), BestEpoch: state.BestEpoch);

        if (NonFinite(model) is string nonFinite)
            return Diverge(store, log, steps, epochs, state,
                $"weight {nonFinite} is not finite after step {state.GlobalStep} (epoch {state.EpochsDone + 1}, batch {state.BatchesDone})", Seconds(), state.GlobalStep);
        double seconds = Seconds();
        SaveCheckpoint(store, log, optimizer, loop.Paused, isBest: false, epochs);
        return new TrainResult(RunStatus.Interrupted, steps, epochs, state.BestAccuracy, TrainSeconds: seconds, BestEpoch: state.BestEpoch);
    }

    /// <summary>
    /// The line that ends training early, when <c>train.early_stop_patience</c> is set and the last that many of
    /// <paramref name="epochs"/> came after <paramref name="bestEpoch"/> (the highest validation accuracy) without
    /// beating it; else null.
    /// </summary>
    string? EarlyStop(IReadOnlyList<EpochRecord> epochs, int? bestEpoch)
    {
        if (_cfg.Train.EarlyStopPatience is not int patience || epochs.Count == 0 || epochs.FirstOrDefault(e => e.Epoch == bestEpoch) is not { } best) return null;
        int since = epochs[^1].Epoch - best.Epoch;
        return since < patience ? null
            : $"early stop after epoch {epochs[^1].Epoch} of {_cfg.Train.Epochs}: validation accuracy has not risen above {best.SelectionAccuracy.ToString("F2", CultureInfo.InvariantCulture)}% (epoch {best.Epoch}) for {since} epochs (train.early_stop_patience: {patience})";
    }

    /// <summary>The first weight or buffer of <paramref name="model"/> that holds a NaN or an infinity; null when all are finite.</summary>
    public static string? NonFinite(nn.Module model) => ResnetMnist.Weights.StateDictChecks.FirstNonFinite(model.state_dict());

    /// <summary>Ends a diverged run: steps.csv so far is written, checkpoints stay as they were.</summary>
    TrainResult Diverge(CheckpointStore store, RunDirectory.StepsLog log, List<StepRecord> steps, List<EpochRecord> epochs, TrainingState best, string what, double seconds, long step)
    {
        log.Flush();
        var kept = File.Exists(store.LastState)
            ? $"the last good checkpoint is kept in {store.Folder} (resume from it with a lower optimizer.lr and --force)"
            : "no checkpoint had been written yet";
        return new TrainResult(RunStatus.Diverged, steps, epochs, best.BestAccuracy, $"{what}; training stopped, {kept}; try a lower optimizer.lr", seconds, best.BestEpoch, DivergedAtStep: step);
    }

    void SaveCheckpoint(CheckpointStore store, RunDirectory.StepsLog log, OptimizerHelper optimizer, TrainingState state, bool isBest, List<EpochRecord> epochs)
    {
        log.Flush();
        run.WriteMetrics(epochs);
        store.Save(session.Model, optimizer, state with { RngState = CheckpointStore.RngState(), Epochs = epochs.ToArray() }, isBest, _cfg.Train.Save);
    }
}
