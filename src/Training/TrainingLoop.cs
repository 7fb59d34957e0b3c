using System.Diagnostics;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.Training;

/// <summary>What <see cref="TrainingLoop.Run"/> reports, in order: per epoch one <see cref="EpochStarted"/>, a
/// <see cref="StepDone"/> per batch, one <see cref="EpochDone"/>.</summary>
public abstract record LoopEvent;

/// <summary>An epoch's batch order is drawn (or restored on a resume) and its first step is next.</summary>
/// <param name="Epoch">1-based.</param>
/// <param name="FirstBatch">0-based batch the epoch starts at (non-zero on a mid-epoch resume).</param>
public sealed record EpochStarted(int Epoch, int Batches, int FirstBatch) : LoopEvent;

/// <summary>One optimizer step is done; <see cref="TrainingLoop.State"/> already counts it.</summary>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="Images">Images in this batch (the last batch of an epoch is partial).</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch so far.</param>
public sealed record StepDone(StepRecord Record, int Batch, int Batches, int Images, double ImagesPerSecond) : LoopEvent;

/// <summary>
/// An epoch's last step is done and the evaluation loaders' draws are made (validation's, with a split, then the
/// test loader's): the reference evaluates now. The state already
/// stands at the next epoch (what the epoch's checkpoint records).
/// </summary>
/// <param name="Epoch">1-based.</param>
/// <param name="TrainLoss">Mean of the epoch's batch losses (the reference's train loss).</param>
/// <param name="Lr">The learning rate of the epoch's last step.</param>
/// <param name="Seconds">Training time of the epoch (evaluation excluded), time before a resume included.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch's steps in this process.</param>
public sealed record EpochDone(int Epoch, double TrainLoss, double Lr, double Seconds, double ImagesPerSecond) : LoopEvent;

/// <summary>Seconds spent in each phase of the steps timed so far (set on <see cref="StepHooks.Times"/>).</summary>
public sealed class PhaseTimes
{
    long _mark;
    /// <summary>Taking the batch: gathering and augmenting it, or for image files what is left of preparing it
    /// (<see cref="BatchStream"/> prepares it while the step before trains), seconds.</summary>
    public double Data { get; private set; }
    /// <summary><c>zero_grad</c>, forward and loss, seconds.</summary>
    public double Forward { get; private set; }
    /// <summary><c>backward</c>, seconds.</summary>
    public double Backward { get; private set; }
    /// <summary>The optimizer step and reading the loss, seconds.</summary>
    public double Optimizer { get; private set; }
    /// <summary>Steps timed.</summary>
    public int Steps { get; private set; }

    internal void Start() => _mark = Stopwatch.GetTimestamp();

    double Lap()
    {
        long now = Stopwatch.GetTimestamp();
        double s = Stopwatch.GetElapsedTime(_mark, now).TotalSeconds;
        _mark = now;
        return s;
    }

    internal void DataDone() => Data += Lap();
    internal void ForwardDone() => Forward += Lap();
    internal void BackwardDone() => Backward += Lap();
    internal void OptimizerDone() { Optimizer += Lap(); Steps++; }
}

/// <summary>
/// Optional instruments of a step; with none set a step does nothing but train. A <see cref="TrainingLoop"/> reads its
/// <see cref="TrainingLoop.Hooks"/> at every step, so they can be set or cleared between steps.
/// </summary>
public sealed class StepHooks
{
    /// <summary>Replaces <c>model.forward</c> (a parity check records the layers' outputs with
    /// <see cref="Model.ResNet.ForwardLayers"/>); it must return the logits of the same computation.</summary>
    public Func<Tensor, Tensor>? Forward { get; set; }
    /// <summary>Runs between <c>backward</c> and the optimizer step (reads the gradients, or the weights before the update).</summary>
    public Action? AfterBackward { get; set; }
    /// <summary>Accumulates the time of each phase of the step; null: nothing is timed.</summary>
    public PhaseTimes? Times { get; set; }
}

/// <summary>
/// The reference's training loop, the only one in the library: per epoch, the batch order of
/// <c>DataLoader(shuffle=True)</c> (<see cref="DataLoaderOrder"/>), then per batch the scheduler's learning rate
/// (<see cref="LrSchedule"/>), the batch with its augmentation (<see cref="BatchStream"/>, which prepares a batch of
/// image files while the step before trains), <c>zero_grad → forward → cross_entropy → backward → step</c>;
/// after the last batch the test loader's draw. <c>train</c> (<see cref="Trainer"/>: evaluation, checkpoints,
/// divergence and interrupts around it), <c>parity</c> (the first N steps) and <c>bench</c> (timed steps) iterate it.
/// Where it stands is one <see cref="TrainingState"/> (<see cref="State"/>), so it continues from a checkpoint exactly.
/// </summary>
public sealed class TrainingLoop
{
    readonly TrainingConfig _cfg;
    readonly Model.ResNet _model;
    readonly OptimizerHelper _optimizer;
    readonly ImageSplit _train;
    readonly Device _device;
    readonly IAugmentation? _augment;
    readonly bool _validates;
    readonly Stopwatch _clock = new();

    /// <summary>Batches per epoch (the last one partial).</summary>
    public int Batches { get; }
    /// <summary>Steps of the whole run (<c>train.epochs</c> × <see cref="Batches"/>; the schedulers' total).</summary>
    public long TotalSteps { get; }
    /// <summary>Where training stands: epochs and batches done, this epoch's order and loss sum, the global step.</summary>
    public TrainingState State { get; private set; }
    /// <summary>Instruments read at every step; empty by default.</summary>
    public StepHooks Hooks { get; init; } = new();
    /// <summary>True when the last <see cref="Run"/> stopped because its cancellation fired.</summary>
    public bool Interrupted { get; private set; }
    /// <summary>Prepare each batch of image files while the step before trains (<see cref="BatchStream"/>; default
    /// true, which changes no result); false: each batch when its step starts.</summary>
    public bool Prefetch { get; init; } = true;
    /// <summary>Steps whose batch was prepared while the step before trained.</summary>
    public long PrefetchedBatches { get; private set; }

    /// <param name="session">The config, model, training split and device.</param>
    /// <param name="optimizer">Over the model's trainable parameters (<see cref="Optimizers.Create"/>); already loaded on a resume.</param>
    /// <param name="resumeFrom">A checkpoint's state to continue from (the generator already restored); null: the first step.</param>
    public TrainingLoop(Session session, OptimizerHelper optimizer, TrainingState? resumeFrom = null)
    {
        (_cfg, _model, _optimizer, _train, _device) = (session.Config, session.Model, optimizer, session.Train, session.Device);
        _train.RequireImages(training: true);
        _augment = _cfg.Data.Augmentation;
        _validates = session.Validation is not null;
        Batches = BatchesPerEpoch(_train.Count, _cfg.Train.BatchSize);
        TotalSteps = (long)Batches * _cfg.Train.Epochs;
        State = (resumeFrom ?? TrainingState.Start(_cfg)) with { Config = ConfigSchema.ResultValues(_cfg) };
    }

    /// <summary>The unfinished epoch's training time so far (time before a resume included); 0 between epochs.</summary>
    public double EpochSecondsSoFar => State.OrderDrawn ? State.EpochSeconds + _clock.Elapsed.TotalSeconds : 0;

    /// <summary>The state to write into a checkpoint now: <see cref="State"/> with the unfinished epoch's time so far.</summary>
    public TrainingState Paused => State with { EpochSeconds = EpochSecondsSoFar };

    /// <summary>Records the best test accuracy so far (%) and its epoch (1-based), which the next checkpoints carry.</summary>
    public void RecordBest(int epoch, double accuracy) => State = State with { BestAccuracy = accuracy, BestEpoch = epoch };

    /// <summary>Train mode, with frozen modules' BatchNorm (all of it with <c>model.bn_eval</c>) kept in eval; again after every evaluation.</summary>
    public void TrainMode()
    {
        _model.train();
        Weights.Freezing.KeepFrozenBatchNormInEval(_model, _cfg.Model.Freeze, _cfg.Model.BnEval);
    }

    /// <summary>
    /// Trains from <see cref="State"/> to the end of <c>train.epochs</c>, step by step, as the caller pulls; stops
    /// early (with <see cref="Interrupted"/> set) when <paramref name="cancel"/> fires, before the next step.
    /// </summary>
    public IEnumerable<LoopEvent> Run(CancellationToken cancel = default)
    {
        Interrupted = false;
        TrainMode();
        int n = _train.Count, bs = _cfg.Train.BatchSize;
        while (State.EpochsDone < _cfg.Train.Epochs)
        {
            if (cancel.IsCancellationRequested) { Interrupted = true; yield break; }
            int epoch = State.EpochsDone;
            Tensor order;
            if (State.OrderDrawn)
                order = _cfg.Train.Shuffle ? DataLoaderOrder.Permutation(n, State.SamplerSeed) : arange(n, dtype: ScalarType.Int64);
            else
            {
                (order, var samplerSeed) = DataLoaderOrder.TrainEpoch(n, _cfg.Train.Shuffle);
                State = State with { OrderDrawn = true, SamplerSeed = samplerSeed, BatchesDone = 0, EpochLossSum = 0, EpochSeconds = 0 };
            }
            using var epochOrder = order.to(_device);
            if (!ReferenceEquals(epochOrder, order)) order.Dispose();

            yield return new EpochStarted(epoch + 1, Batches, State.BatchesDone);
            using var batches = new BatchStream(_train, epochOrder, bs, _augment, State.BatchesDone, Prefetch);
            _clock.Restart();
            long images = 0;
            double lr = 0;
            while (State.BatchesDone < Batches)
            {
                if (cancel.IsCancellationRequested) { Interrupted = true; yield break; }
                int b = State.BatchesDone;
                lr = LrSchedule.Apply(_optimizer, _cfg, epoch, State.GlobalStep, TotalSteps);
                int len = (int)Math.Min(bs, n - (long)b * bs);
                double loss = Step(batches);
                State = State with { GlobalStep = State.GlobalStep + 1, BatchesDone = b + 1, EpochLossSum = State.EpochLossSum + loss };
                images += len;
                yield return new StepDone(new StepRecord(State.GlobalStep, epoch + 1, loss, lr), b + 1, Batches, len,
                    images / Math.Max(1e-9, _clock.Elapsed.TotalSeconds));
            }
            _clock.Stop();
            var done = new EpochDone(epoch + 1, State.EpochLossSum / Batches, lr, State.EpochSeconds + _clock.Elapsed.TotalSeconds,
                images / Math.Max(1e-9, _clock.Elapsed.TotalSeconds));
            if (_validates) DataLoaderOrder.DrawTestLoaderSeed(); // iter(DataLoader(validation, shuffle=False)), evaluated before the test set
            DataLoaderOrder.DrawTestLoaderSeed();
            State = State with { EpochsDone = epoch + 1, BatchesDone = 0, OrderDrawn = false, SamplerSeed = 0, EpochLossSum = 0, EpochSeconds = 0 };
            _clock.Reset();
            yield return done;
        }
    }

    /// <summary>One step on the next batch of <paramref name="batches"/> (the time waited for it is the step's data time).</summary>
    double Step(BatchStream batches)
    {
        using var scope = NewDisposeScope();
        Hooks.Times?.Start();
        int before = batches.Prefetched;
        var (x, y) = batches.Next();
        PrefetchedBatches += batches.Prefetched - before;
        Hooks.Times?.DataDone();
        return StepOn(_model, _optimizer, x, y, Hooks);
    }

    /// <summary>Batch <paramref name="batch"/> (0-based) of an epoch's order: at most <paramref name="batchSize"/> indices.</summary>
    public static Tensor BatchIndices(Tensor order, int batch, int batchSize)
    {
        long start = (long)batch * batchSize;
        return order.narrow(0, start, Math.Min(batchSize, order.size(0) - start));
    }

    /// <summary>Batches per epoch, the last one partial: computed in 64 bits, so that any batch size is safe.</summary>
    public static int BatchesPerEpoch(int images, int batchSize) => (int)(((long)images + batchSize - 1) / batchSize);

    /// <summary>
    /// One training step on the images at <paramref name="indices"/>: gather the batch (one <c>index_select</c>, no
    /// per-image work; with <paramref name="augment"/> its augmentation is drawn and applied first, as the DataLoader
    /// fetches a batch before the loop body runs), then the step on it (<see cref="Step(nn.Module{Tensor, Tensor}, OptimizerHelper, Tensor, Tensor, StepHooks?)"/>).
    /// </summary>
    public static double Step(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, ImageSplit data, Tensor indices,
        IAugmentation? augment = null, StepHooks? hooks = null)
    {
        using var scope = NewDisposeScope();
        hooks?.Times?.Start();
        var x = data.Gather(indices, augment);
        var y = data.Labels.index_select(0, indices);
        hooks?.Times?.DataDone();
        return StepOn(model, optimizer, x, y, hooks);
    }

    /// <summary>
    /// One training step on a given batch: <c>zero_grad → forward → cross_entropy → backward → step</c>. Every tensor
    /// it makes, the autograd graph's included, is freed before it returns. Returns the batch loss.
    /// </summary>
    public static double Step(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, Tensor x, Tensor y, StepHooks? hooks = null)
    {
        using var scope = NewDisposeScope();
        hooks?.Times?.Start();
        hooks?.Times?.DataDone();
        return StepOn(model, optimizer, x, y, hooks);
    }

    static double StepOn(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, Tensor x, Tensor y, StepHooks? hooks)
    {
        var times = hooks?.Times;
        optimizer.zero_grad();
        var logits = hooks?.Forward is { } forward ? forward(x) : model.forward(x);
        var loss = cross_entropy(logits, y);
        times?.ForwardDone();
        loss.backward();
        times?.BackwardDone();
        hooks?.AfterBackward?.Invoke();
        optimizer.step();
        // The flat optimizers (Optimizers.Create) make a few tensors per chunk, all disposed; TorchSharp's per-tensor
        // step (where the flat one does not apply) leaves ~500 finalizable wrappers per step that hold native memory
        // until a collection runs (measured, Adam, batch 16, one epoch without collections: 1,649 MiB peak against
        // 483 MiB), so only then does the step end with a gen-0 collection.
        if (optimizer is not IFlatStep { LastStepFlat: true }) GC.Collect(0);
        double value = loss.to_type(ScalarType.Float64).item<double>();
        times?.OptimizerDone();
        return value;
    }
}
