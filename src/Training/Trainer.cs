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
public enum RunStatus { Completed, Interrupted }

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
public sealed record TrainResult(RunStatus Status, IReadOnlyList<StepRecord> Steps, IReadOnlyList<EpochRecord> Epochs, double BestAccuracy);

/// <summary>Training stopped because the loss became NaN or infinite; the last good checkpoint is kept.</summary>
public sealed class DivergedException(string message) : Exception(message);

/// <summary>
/// The seed's training loop, step for step: per epoch, batches in <c>DataLoader(shuffle=True)</c>'s order
/// (<see cref="DataLoaderOrder"/>), <c>zero_grad → forward → cross_entropy → backward → step</c>, the epoch's
/// train loss as the mean of its batch losses, then an evaluation on the test split. Writes the run's files and a
/// checkpoint after every epoch (and when cancelled), and resumes from one exactly.
/// </summary>
public sealed class Trainer(TrainingSession session, RunDirectory run, ITrainingObserver observer)
{
    readonly TrainingConfig _cfg = session.Config;

    /// <summary>Config values that change the result: a resume refuses to change them unless forced.</summary>
    public static Dictionary<string, string> ResultKeys(TrainingConfig c) => new()
    {
        ["seed"] = c.Seed.ToString(CultureInfo.InvariantCulture),
        ["data.dataset"] = c.Data.Dataset,
        ["data.root"] = c.Data.Root,
        ["data.train_limit"] = c.Data.TrainLimit?.ToString(CultureInfo.InvariantCulture) ?? "null",
        ["data.normalize"] = c.Data.Normalize.ToString(),
        ["model.arch"] = c.Model.Arch,
        ["model.pretrained"] = c.Model.Pretrained,
        ["model.in_channels"] = c.Model.InChannels.ToString(CultureInfo.InvariantCulture),
        ["model.num_classes"] = c.Model.NumClasses.ToString(CultureInfo.InvariantCulture),
        ["train.epochs"] = c.Train.Epochs.ToString(CultureInfo.InvariantCulture),
        ["train.batch_size"] = c.Train.BatchSize.ToString(CultureInfo.InvariantCulture),
        ["train.shuffle"] = c.Train.Shuffle.ToString(),
        ["train.dtype"] = c.Train.Dtype,
        ["optimizer"] = $"{c.Optimizer.Name} lr={c.Optimizer.Lr:R} momentum={c.Optimizer.Momentum:R} nesterov={c.Optimizer.Nesterov} wd={c.Optimizer.WeightDecay:R} betas={string.Join("/", c.Optimizer.Betas)} eps={c.Optimizer.Eps:R}",
        ["scheduler"] = $"{c.Scheduler.Name} {c.Scheduler.StepSize} {c.Scheduler.Gamma:R} {c.Scheduler.TMax} {c.Scheduler.EtaMin:R} {c.Scheduler.MaxLr:R} {c.Scheduler.PctStart:R}",
    };

    /// <summary>Trains to the end or until <paramref name="cancel"/> fires (then a resumable checkpoint is written).</summary>
    /// <param name="resume">Continue from <c>RUN/checkpoints/last.*</c>.</param>
    /// <param name="force">Resume even when result-affecting config values changed.</param>
    /// <param name="state">The checkpoint state when the caller has already read (and verified) it; read here otherwise.</param>
    public TrainResult Run(CancellationToken cancel, bool resume = false, bool force = false, TrainingState? state = null)
    {
        var model = session.Model;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = Optimizers.Create(_cfg.Optimizer, parameters);
        var store = new CheckpointStore(run.Checkpoints);

        var steps = new List<StepRecord>();
        var epochs = new List<EpochRecord>();
        int startEpoch = 0, startBatch = 0;
        bool orderDrawn = false;
        long samplerSeed = 0, globalStep = 0;
        double epochLossSum = 0, best = -1; // test accuracy in %; -1 = no epoch evaluated yet

        if (resume)
        {
            state ??= store.ReadState();
            CheckResumable(state.Config, ResultKeys(_cfg), force);
            store.Load(model, optimizer);
            CheckpointStore.RestoreRng(state.RngState);
            (startEpoch, startBatch, orderDrawn, samplerSeed, epochLossSum, globalStep, best) =
                (state.EpochsDone, state.BatchesDone, state.OrderDrawn, state.SamplerSeed, state.EpochLossSum, state.GlobalStep, state.BestAccuracy);
            if (File.Exists(run.StepsFile)) steps.AddRange(RunDirectory.ReadSteps(run.StepsFile).Where(s => s.Step <= globalStep));
            if (File.Exists(run.MetricsFile)) epochs.AddRange(RunDirectory.ReadMetrics(run.MetricsFile).Where(e => e.Epoch <= startEpoch));
            observer.Info($"resuming {run.Path} at epoch {startEpoch + 1}, batch {startBatch + 1} (step {globalStep})");
        }
        run.WriteConfig(_cfg);

        int n = session.Train.Count, bs = _cfg.Train.BatchSize;
        int batches = (n + bs - 1) / bs;
        long totalSteps = (long)batches * _cfg.Train.Epochs;
        model.train();
        Freeze();

        for (int epoch = startEpoch; epoch < _cfg.Train.Epochs; epoch++)
        {
            if (cancel.IsCancellationRequested)
            {
                SaveCheckpoint(store, optimizer, epoch, 0, false, 0, 0, globalStep, best, isBest: false, steps, epochs);
                return new TrainResult(RunStatus.Interrupted, steps, epochs, best);
            }
            Tensor order;
            if (orderDrawn && epoch == startEpoch)
                order = _cfg.Train.Shuffle ? DataLoaderOrder.Permutation(n, samplerSeed) : arange(n, dtype: ScalarType.Int64);
            else
            {
                (order, samplerSeed) = DataLoaderOrder.TrainEpoch(n, _cfg.Train.Shuffle);
                startBatch = 0;
                epochLossSum = 0;
            }
            order = order.to(session.Device);

            observer.EpochStarted(epoch + 1, _cfg.Train.Epochs, batches, startBatch);
            var clock = Stopwatch.StartNew();
            long images = 0;
            for (int b = startBatch; b < batches; b++)
            {
                if (cancel.IsCancellationRequested)
                {
                    SaveCheckpoint(store, optimizer, epoch, b, true, samplerSeed, epochLossSum, globalStep, best, isBest: false, steps, epochs);
                    order.Dispose();
                    return new TrainResult(RunStatus.Interrupted, steps, epochs, best);
                }
                double lr = LrSchedule.Apply(optimizer, _cfg, epoch, globalStep, totalSteps);
                int len = Math.Min(bs, n - b * bs);
                double loss;
                using (var indices = order.narrow(0, (long)b * bs, len))
                    loss = Step(session.Model, optimizer, session.Train, indices);
                globalStep++;
                if (!double.IsFinite(loss))
                {
                    run.WriteSteps(steps);
                    var kept = File.Exists(store.LastState)
                        ? $"the last good checkpoint is kept in {store.Folder} (resume from it with a lower optimizer.lr and --force)"
                        : "no checkpoint had been written yet";
                    throw new DivergedException($"loss is {loss.ToString(CultureInfo.InvariantCulture)} at step {globalStep} (epoch {epoch + 1}, batch {b + 1}); " +
                                                $"training stopped, {kept}; try a lower optimizer.lr");
                }
                epochLossSum += loss;
                images += len;
                var record = new StepRecord(globalStep, epoch + 1, loss, lr);
                steps.Add(record);
                observer.StepFinished(record, b + 1, batches, images / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
            }
            order.Dispose();
            double seconds = clock.Elapsed.TotalSeconds;

            DataLoaderOrder.EvalEpoch();
            var eval = Evaluator.Run(model, session.Test, _cfg.Train.EvalBatchSize, _cfg.Model.NumClasses);
            model.train();
            Freeze();

            bool isBest = eval.Accuracy > best;
            if (isBest) best = eval.Accuracy;
            var er = new EpochRecord(epoch + 1, epochLossSum / batches, eval.Loss, eval.Accuracy,
                LrSchedule.At(_cfg, epoch, globalStep - 1, totalSteps), seconds, images / Math.Max(1e-9, seconds));
            epochs.Add(er);
            SaveCheckpoint(store, optimizer, epoch + 1, 0, false, 0, 0, globalStep, best, isBest, steps, epochs);
            observer.EpochFinished(er, isBest);
            startBatch = 0;
            orderDrawn = false;
        }
        return new TrainResult(RunStatus.Completed, steps, epochs, best);
    }

    /// <summary>
    /// One training step on the images at <paramref name="indices"/>: gather the batch (one <c>index_select</c>, no
    /// per-image work), <c>zero_grad → forward → cross_entropy → backward → step</c>. Every tensor it makes, the
    /// autograd graph's included, is freed before it returns. Returns the batch loss.
    /// </summary>
    /// <param name="forward">Replaces <c>model.forward</c> for this step (a parity check records the layers' outputs
    /// with <see cref="ResNet.ForwardLayers"/>); it must return the logits of the same computation.</param>
    /// <param name="afterBackward">Runs between <c>backward</c> and the optimizer step (a parity check reads the gradients).</param>
    public static double Step(ResNet model, OptimizerHelper optimizer, MnistDataset data, Tensor indices,
        Func<Tensor, Tensor>? forward = null, Action? afterBackward = null)
    {
        using var scope = NewDisposeScope();
        var x = data.Gather(indices);
        var y = data.Labels.index_select(0, indices);
        optimizer.zero_grad();
        var logits = forward is null ? model.forward(x) : forward(x);
        var loss = cross_entropy(logits, y);
        loss.backward();
        afterBackward?.Invoke();
        optimizer.step();
        double value = loss.to_type(ScalarType.Float64).item<double>();
        // TorchSharp's optimizers leave small finalizable objects per parameter and step (e.g. the Scalars of
        // their arithmetic) that hold native memory until a collection runs. Measured here (Adam, batch 64):
        // resident memory 683 MiB after 40 steps without this line, 441 MiB with it, for < 3% of step time.
        GC.Collect(0);
        return value;
    }

    /// <summary>After every switch to train mode: frozen modules' BatchNorm (all of it with bn_eval) stays in eval.</summary>
    void Freeze() => Weights.Freezing.KeepFrozenBatchNormInEval(session.Model, _cfg.Model.Freeze, _cfg.Model.BnEval);

    void SaveCheckpoint(CheckpointStore store, OptimizerHelper optimizer, int epochsDone, int batchesDone, bool orderDrawn, long samplerSeed,
        double lossSum, long globalStep, double best, bool isBest, List<StepRecord> steps, List<EpochRecord> epochs)
    {
        run.WriteSteps(steps);
        run.WriteMetrics(epochs);
        var state = new TrainingState(epochsDone, batchesDone, orderDrawn, samplerSeed, lossSum, globalStep, best,
            CheckpointStore.RngState(), ResultKeys(_cfg), "", "");
        store.Save(session.Model, optimizer, state, isBest);
    }

    /// <summary>Throws a <see cref="CheckpointException"/> when <paramref name="now"/> changes a result-affecting value of <paramref name="saved"/> (unless forced).</summary>
    public static void CheckResumable(IReadOnlyDictionary<string, string> saved, Dictionary<string, string> now, bool force)
    {
        var changed = now.Where(kv => !saved.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Select(kv => $"{kv.Key} was '{(saved.TryGetValue(kv.Key, out var v) ? v : "?")}', now '{kv.Value}'").ToList();
        if (changed.Count > 0 && !force)
            throw new CheckpointException($"the config changed in ways that alter the result ({string.Join("; ", changed)}); use the run's own config.yaml, or --force to resume anyway");
    }
}
