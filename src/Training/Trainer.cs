using System.Diagnostics;
using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using ResnetMnist.Outputs;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.Training;

/// <summary>How a run ended.</summary>
public enum RunStatus { Completed, Interrupted, Diverged }

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
/// <param name="Problem">With <see cref="RunStatus.Diverged"/>: what was not finite, where, and what was kept.</param>
/// <param name="TrainSeconds">Training time of the whole run so far (evaluation excluded), the unfinished epoch's included.</param>
public sealed record TrainResult(RunStatus Status, IReadOnlyList<StepRecord> Steps, IReadOnlyList<EpochRecord> Epochs, double BestAccuracy,
    string? Problem = null, double TrainSeconds = 0);

/// <summary>Training stopped because the loss became NaN or infinite; the last good checkpoint is kept.</summary>
public sealed class DivergedException(string message) : Exception(message);

/// <summary>
/// The reference's training loop, step for step: per epoch, batches in <c>DataLoader(shuffle=True)</c>'s order
/// (<see cref="DataLoaderOrder"/>), <c>zero_grad → forward → cross_entropy → backward → step</c>, the epoch's
/// train loss as the mean of its batch losses, then an evaluation on the test split. Writes the run's files and a
/// checkpoint after every epoch (and when cancelled), and resumes from one exactly. Where training stands is one
/// <see cref="TrainingState"/> value, which the checkpoint writes and reads whole.
/// </summary>
public sealed class Trainer(Session session, RunDirectory run, ITrainingObserver observer)
{
    readonly TrainingConfig _cfg = session.Config;
    readonly CifarAugment? _augment = session.Config.Data.Augment ? new CifarAugment() : null;

    /// <summary>Trains to the end or until <paramref name="cancel"/> fires (then a resumable checkpoint is written).</summary>
    /// <param name="resumeFrom">The checkpoint state to continue from (already checked by <see cref="TrainingRun"/>); null: from the start.</param>
    public TrainResult Run(CancellationToken cancel, TrainingState? resumeFrom = null)
    {
        var model = session.Model;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = Optimizers.Create(_cfg.Optimizer, parameters);
        var store = new CheckpointStore(run.Checkpoints, Weights.CheckpointModel.From(_cfg));

        var steps = new List<StepRecord>();
        var epochs = new List<EpochRecord>();
        // best accuracy in %; -1 = no epoch evaluated yet
        var state = new TrainingState(0, 0, false, 0, 0, 0, -1, "", ConfigSchema.ResultValues(_cfg), "", "");

        if (resumeFrom is not null)
        {
            store.Load(model, optimizer);
            if (NonFinite(model) is string bad)
                throw new CheckpointException($"{store.LastWeights}: {bad} holds NaN or infinite values: this checkpoint diverged; train again from the start (--force) with a lower optimizer.lr");
            CheckpointStore.RestoreRng(resumeFrom.RngState);
            state = resumeFrom with { Config = state.Config };
            if (File.Exists(run.StepsFile)) steps.AddRange(RunDirectory.ReadSteps(run.StepsFile).Where(s => s.Step <= state.GlobalStep));
            if (File.Exists(run.MetricsFile)) epochs.AddRange(RunDirectory.ReadMetrics(run.MetricsFile).Where(e => e.Epoch <= state.EpochsDone));
            observer.Info($"resuming {run.Path} at epoch {state.EpochsDone + 1}, batch {state.BatchesDone + 1} (step {state.GlobalStep})");
        }
        run.WriteConfig(_cfg);
        using var log = run.OpenStepsLog(steps);
        var flushed = Stopwatch.StartNew();
        var clock = new Stopwatch();
        double Seconds() => epochs.Sum(e => e.EpochSeconds) + (state.OrderDrawn ? state.EpochSeconds + clock.Elapsed.TotalSeconds : 0);

        int n = session.Train.Count, bs = _cfg.Train.BatchSize;
        session.Train.RequireImages(training: true);
        int batches = BatchesPerEpoch(n, bs);
        long totalSteps = (long)batches * _cfg.Train.Epochs;
        model.train();
        Freeze();

        TrainResult Interrupted()
        {
            if (NonFinite(model) is string bad)
                return Diverge(store, log, steps, epochs, state.BestAccuracy, $"weight {bad} is not finite after step {state.GlobalStep} (epoch {state.EpochsDone + 1}, batch {state.BatchesDone})", Seconds());
            double seconds = Seconds();
            state = state with { EpochSeconds = state.OrderDrawn ? state.EpochSeconds + clock.Elapsed.TotalSeconds : 0 };
            clock.Reset();
            SaveCheckpoint(store, log, optimizer, state, isBest: false, epochs);
            return new TrainResult(RunStatus.Interrupted, steps, epochs, state.BestAccuracy, TrainSeconds: seconds);
        }

        while (state.EpochsDone < _cfg.Train.Epochs)
        {
            if (cancel.IsCancellationRequested) return Interrupted();
            int epoch = state.EpochsDone;
            Tensor order;
            if (state.OrderDrawn)
                order = _cfg.Train.Shuffle ? DataLoaderOrder.Permutation(n, state.SamplerSeed) : arange(n, dtype: ScalarType.Int64);
            else
            {
                (order, var samplerSeed) = DataLoaderOrder.TrainEpoch(n, _cfg.Train.Shuffle);
                state = state with { OrderDrawn = true, SamplerSeed = samplerSeed, BatchesDone = 0, EpochLossSum = 0, EpochSeconds = 0 };
            }
            using var epochOrder = order.to(session.Device);
            if (!ReferenceEquals(epochOrder, order)) order.Dispose();

            observer.EpochStarted(epoch + 1, _cfg.Train.Epochs, batches, state.BatchesDone);
            clock.Restart();
            long images = 0;
            while (state.BatchesDone < batches)
            {
                if (cancel.IsCancellationRequested) return Interrupted();
                int b = state.BatchesDone;
                double lr = LrSchedule.Apply(optimizer, _cfg, epoch, state.GlobalStep, totalSteps);
                int len = (int)Math.Min(bs, n - (long)b * bs);
                double loss;
                using (var indices = epochOrder.narrow(0, (long)b * bs, len))
                    loss = Step(session.Model, optimizer, session.Train, indices, augment: _augment);
                state = state with { GlobalStep = state.GlobalStep + 1, BatchesDone = b + 1, EpochLossSum = state.EpochLossSum + loss };
                if (!double.IsFinite(loss))
                    return Diverge(store, log, steps, epochs, state.BestAccuracy, $"loss is {loss.ToString(CultureInfo.InvariantCulture)} at step {state.GlobalStep} (epoch {epoch + 1}, batch {b + 1})", Seconds());
                images += len;
                var record = new StepRecord(state.GlobalStep, epoch + 1, loss, lr);
                steps.Add(record);
                log.Append(record);
                if (flushed.Elapsed.TotalSeconds >= _cfg.Train.LogEvery) { log.Flush(); flushed.Restart(); }
                observer.StepFinished(record, b + 1, batches, images / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
            }
            clock.Stop();
            double seconds = state.EpochSeconds + clock.Elapsed.TotalSeconds;
            log.Flush();

            DataLoaderOrder.DrawTestLoaderSeed();
            var eval = Evaluator.Run(model, session.Test, _cfg.Train.EvalBatchSize, _cfg.Model.NumClasses);
            model.train();
            Freeze();

            // Nothing non-finite becomes a checkpoint: weights that overflowed at the epoch's last step (or stay finite
            // but are so large that the test loss is NaN) end the run as diverged, and the previous checkpoint stays.
            double trainLoss = state.EpochLossSum / batches;
            string? problem = NonFinite(model) is string weight ? $"weight {weight} is not finite"
                : !double.IsFinite(eval.Loss) ? $"test loss is {eval.Loss.ToString(CultureInfo.InvariantCulture)}"
                : !double.IsFinite(trainLoss) ? $"train loss is {trainLoss.ToString(CultureInfo.InvariantCulture)}"
                : null;
            if (problem is not null)
                return Diverge(store, log, steps, epochs, state.BestAccuracy, $"{problem} after epoch {epoch + 1} (step {state.GlobalStep})", Seconds());
            bool isBest = eval.Accuracy > state.BestAccuracy;
            var er = new EpochRecord(epoch + 1, trainLoss, eval.Loss, eval.Accuracy,
                LrSchedule.At(_cfg, epoch, state.GlobalStep - 1, totalSteps), seconds, images / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
            epochs.Add(er);
            state = state with
            {
                EpochsDone = epoch + 1, BatchesDone = 0, OrderDrawn = false, SamplerSeed = 0, EpochLossSum = 0, EpochSeconds = 0,
                BestAccuracy = isBest ? eval.Accuracy : state.BestAccuracy,
            };
            clock.Reset();
            SaveCheckpoint(store, log, optimizer, state, isBest, epochs);
            observer.EpochFinished(er, isBest);
        }
        return new TrainResult(RunStatus.Completed, steps, epochs, state.BestAccuracy, TrainSeconds: Seconds());
    }

    /// <summary>
    /// One training step on the images at <paramref name="indices"/>: gather the batch (one <c>index_select</c>, no
    /// per-image work), <c>zero_grad → forward → cross_entropy → backward → step</c>. Every tensor it makes, the
    /// autograd graph's included, is freed before it returns. Returns the batch loss.
    /// </summary>
    /// <param name="forward">Replaces <c>model.forward</c> for this step (a parity check records the layers' outputs
    /// with <see cref="ResNet.ForwardLayers"/>); it must return the logits of the same computation.</param>
    /// <param name="afterBackward">Runs between <c>backward</c> and the optimizer step (a parity check reads the gradients).</param>
    /// <param name="augment">With <c>data.augment</c>: draws and applies the batch's augmentation (before anything else of the step, as the DataLoader fetches a batch before the loop body runs).</param>
    public static double Step(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, ImageSplit data, Tensor indices,
        Func<Tensor, Tensor>? forward = null, Action? afterBackward = null, CifarAugment? augment = null)
    {
        using var scope = NewDisposeScope();
        var x = data.Gather(indices, augment);
        var y = data.Labels.index_select(0, indices);
        optimizer.zero_grad();
        var logits = forward is null ? model.forward(x) : forward(x);
        var loss = cross_entropy(logits, y);
        loss.backward();
        afterBackward?.Invoke();
        optimizer.step();
        // The flat optimizers (Optimizers.Create) make a few tensors per chunk, all disposed; TorchSharp's per-tensor
        // step (where the flat one does not apply) leaves ~500 finalizable wrappers per step that hold native memory
        // until a collection runs (measured, Adam, batch 16, one epoch without collections: 1,649 MiB peak against
        // 483 MiB), so only then does the step end with a gen-0 collection.
        if (optimizer is not IFlatStep { LastStepFlat: true }) GC.Collect(0);
        return loss.to_type(ScalarType.Float64).item<double>();
    }

    /// <summary>Batches per epoch, the last one partial: computed in 64 bits, so that any batch size is safe.</summary>
    public static int BatchesPerEpoch(int images, int batchSize) => (int)(((long)images + batchSize - 1) / batchSize);

    /// <summary>The first weight or buffer of <paramref name="model"/> that holds a NaN or an infinity; null when all are finite.</summary>
    public static string? NonFinite(nn.Module model) => ResnetMnist.Weights.StateDictChecks.FirstNonFinite(model.state_dict());

    /// <summary>Ends a diverged run: steps.csv so far is written, checkpoints stay as they were.</summary>
    TrainResult Diverge(CheckpointStore store, RunDirectory.StepsLog log, List<StepRecord> steps, List<EpochRecord> epochs, double best, string what, double seconds)
    {
        log.Flush();
        var kept = File.Exists(store.LastState)
            ? $"the last good checkpoint is kept in {store.Folder} (resume from it with a lower optimizer.lr and --force)"
            : "no checkpoint had been written yet";
        return new TrainResult(RunStatus.Diverged, steps, epochs, best, $"{what}; training stopped, {kept}; try a lower optimizer.lr", seconds);
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
        int epochs = cfg.Train.Epochs, batches = BatchesPerEpoch(trainImages, cfg.Train.BatchSize);
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

    /// <summary>After every switch to train mode: frozen modules' BatchNorm (all of it with bn_eval) stays in eval.</summary>
    void Freeze() => Weights.Freezing.KeepFrozenBatchNormInEval(session.Model, _cfg.Model.Freeze, _cfg.Model.BnEval);

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
