using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace ResnetMnist.Bench;

/// <summary>What <see cref="Benchmark.Run"/> measures and how long.</summary>
/// <param name="Mode">steps: train/eval throughput, batch sizes, step breakdown; epoch: load the data + one training
/// epoch; memory: resident memory after each epoch of a short run; data: the data path alone; optimizer:
/// optimizer.step() alone, on the gradients of one batch.</param>
/// <param name="Warmup">Untimed steps before each timing (default 3).</param>
/// <param name="Steps">Timed steps (default 10).</param>
/// <param name="BatchSizes">Batch sizes for the step-time sweep, comma-separated (default 16,64,256).</param>
/// <param name="OptimizerStep">The optimizer step measured (default: the fused one train uses).</param>
public sealed record BenchOptions(string Mode = "steps", int Warmup = 3, int Steps = 10, string BatchSizes = "16,64,256",
    OptimizerStep OptimizerStep = OptimizerStep.Fused);

/// <summary>
/// The "measure" use case: speed and memory of the training and evaluation code paths (the same code <c>train</c> and
/// <c>evaluate</c> run: <see cref="TrainingLoop"/>, <see cref="Evaluator"/>), as a JSON-ready record.
/// <c>bench/run.sh</c> runs it (through <c>dotnet resnet-mnist bench</c>) beside <c>bench/bench_reference.py</c>.
/// </summary>
public static class Benchmark
{
    /// <summary>Measures <paramref name="cfg"/> as <paramref name="s"/> asks; the figures by name (seconds, MiB, images/s).</summary>
    public static Dictionary<string, object?> Run(TrainingConfig cfg, BenchOptions s)
    {
        var result = new Dictionary<string, object?>
        {
            ["implementation"] = "tool",
            ["mode"] = s.Mode,
            ["threads_config"] = cfg.Threads,
            ["channels_last"] = cfg.Model.ChannelsLast,
            ["optimizer"] = cfg.Optimizer.Name.ToString().ToLowerInvariant(),
            ["flat_optimizer"] = s.OptimizerStep != OptimizerStep.PerTensor,
            ["optimizer_step"] = s.OptimizerStep.ToString().ToLowerInvariant(),
        };
        if (s.Steps < 1 || s.Warmup < 0) throw new BadInputException($"bench --steps {s.Steps} --warmup {s.Warmup}: expected at least 1 timed step and 0 or more warm-up steps");
        switch (s.Mode)
        {
            case "steps": Steps(cfg, s, result); break;
            case "epoch": Epoch(cfg, s, result); break;
            case "memory": Memory(cfg, result); break;
            case "data": DataPath(cfg, result); break;
            case "optimizer": OptimizerSteps(cfg, s, result); break;
            default: throw new BadInputException($"bench --mode {s.Mode}: expected steps, epoch, memory, data or optimizer");
        }
        result["threads"] = get_num_threads();
        result["thread_wait"] = ResnetMnist.Native.NativeLoader.WaitPolicy;
        result["malloc"] = ResnetMnist.Native.NativeHeap.Description;
        result["libtorch"] = __version__;
        result["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString();
        result["dotnet"] = Environment.Version.ToString();
        result["vm_hwm_mib"] = ProcStatusMiB("VmHWM");
        result["vm_rss_mib"] = ProcStatusMiB("VmRSS");
        return result;
    }

    static OptimizerHelper Optimizer(Session session, BenchOptions s) =>
        Optimizers.Create(session.Config.Optimizer, session.Model.parameters().Where(p => p.requires_grad).ToList(), s.OptimizerStep);

    /// <summary>What the timed steps took: wall time, the images they trained on, and each phase's share.</summary>
    sealed record Timed(double Seconds, long Images, int Steps, PhaseTimes Phases);

    /// <summary>
    /// Runs the steps <c>train</c> runs (<see cref="TrainingLoop"/>: batch order, scheduler, augmentation, step), the
    /// loop started again from its first epoch when its epochs run out (no evaluation between), and times the
    /// <paramref name="steps"/> after <paramref name="warmup"/>: wall time from the last untimed step's end to the
    /// last timed step's end, and each phase through <see cref="StepHooks.Times"/>.
    /// </summary>
    static Timed TimeSteps(Session session, OptimizerHelper optimizer, int warmup, int steps)
    {
        var hooks = new StepHooks();
        var wall = new Stopwatch();
        long images = 0;
        int done = 0;
        void StartTiming() { hooks.Times = new PhaseTimes(); wall.Start(); }
        if (warmup == 0) StartTiming();
        while (true)
        {
            var loop = new TrainingLoop(session, optimizer) { Hooks = hooks };
            foreach (var e in loop.Run())
            {
                if (e is not StepDone step) continue;
                done++;
                if (done <= warmup) { if (done == warmup) StartTiming(); continue; }
                images += step.Images;
                if (done == warmup + steps)
                {
                    wall.Stop();
                    return new Timed(wall.Elapsed.TotalSeconds, images, steps, hooks.Times!);
                }
            }
        }
    }

    static void Steps(TrainingConfig cfg, BenchOptions s, Dictionary<string, object?> r)
    {
        int bs = cfg.Train.BatchSize;
        using var session = Session.Create(cfg);
        var model = session.Model;
        using var optimizer = Optimizer(session, s);

        // Training throughput, and where a step's time goes, over the same steps.
        var t = TimeSteps(session, optimizer, s.Warmup, s.Steps);
        r["batch_size"] = bs;
        r["train_step_s"] = t.Seconds / t.Steps;
        r["train_images_per_s"] = t.Images / t.Seconds;
        r["breakdown_s"] = new Dictionary<string, double>
        {
            ["data"] = t.Phases.Data / t.Phases.Steps, ["forward"] = t.Phases.Forward / t.Phases.Steps,
            ["backward"] = t.Phases.Backward / t.Phases.Steps, ["optimizer"] = t.Phases.Optimizer / t.Phases.Steps,
        };

        // Evaluation throughput: no grad, eval mode, batches of train.batch_size (the reference's evaluation batch),
        // of train.eval_batch_size (the tool's own) and of 1,000 (as the reference measures too), through the Evaluator itself.
        var test = session.Test;
        r["eval_images"] = test.Count;
        double EvalRate(int batch)
        {
            Evaluator.Run(model, test, batch, cfg.Model.NumClasses); // warm-up pass
            var sw = Stopwatch.StartNew();
            int reps = 2;
            for (int i = 0; i < reps; i++) Evaluator.Run(model, test, batch, cfg.Model.NumClasses);
            return reps * test.Count / sw.Elapsed.TotalSeconds;
        }
        r["eval_images_per_s"] = EvalRate(bs);
        r["eval_batch_size_own"] = cfg.Train.EvalBatchSize;
        r["eval_images_per_s_own_batch"] = EvalRate(cfg.Train.EvalBatchSize);
        r["eval_images_per_s_1000"] = EvalRate(1000);

        // Step time against batch size: a fresh session (seed, model, data) per batch size, as `train` would start.
        var sweep = new Dictionary<string, double>();
        foreach (var b in s.BatchSizes.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)))
        {
            using var sized = Session.Create(cfg with { Train = cfg.Train with { BatchSize = b } });
            using var sizedOptimizer = Optimizer(sized, s);
            var tb = TimeSteps(sized, sizedOptimizer, s.Warmup, s.Steps);
            sweep[b.ToString(CultureInfo.InvariantCulture)] = tb.Seconds / tb.Steps;
        }
        r["step_s_by_batch"] = sweep;
    }

    /// <summary>
    /// <c>optimizer.step()</c> alone: the gradients of one batch of train.batch_size, then --warmup untimed and --steps
    /// timed steps on them (each step timed on its own; the figures are the mean, min and max).
    /// </summary>
    static void OptimizerSteps(TrainingConfig cfg, BenchOptions s, Dictionary<string, object?> r)
    {
        using var session = Session.Create(cfg);
        var model = session.Model;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = Optimizer(session, s);
        model.train();
        // One step of the training loop leaves the gradients of one batch in place; the timed steps reuse them.
        using (var scope = NewDisposeScope())
        using (var idx = arange(0L, Math.Min(cfg.Train.BatchSize, session.Train.Count), dtype: ScalarType.Int64))
            TrainingLoop.Step(model, optimizer, session.Train.Gather(idx), session.Train.Labels.index_select(0, idx));
        for (int i = 0; i < s.Warmup; i++) optimizer.step();
        var times = new List<double>();
        for (int i = 0; i < s.Steps; i++)
        {
            var sw = Stopwatch.StartNew();
            optimizer.step();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        r["parameters"] = parameters.Sum(p => p.numel());
        r["optimizer_step_s"] = times.Average();
        r["optimizer_step_min_s"] = times.Min();
        r["optimizer_step_max_s"] = times.Max();
        r["fused"] = optimizer is IFlatStep { LastStepFused: true };
        // How Adam's fused step reproduces libtorch's (MKL's) square root here: in registers, or MKL per chunk.
        r["sqrt_form"] = new Dictionary<string, string> { ["float32"] = SqrtLikeMkl.FormFor<float>().ToString(), ["float64"] = SqrtLikeMkl.FormFor<double>().ToString() };
    }

    /// <summary>What <c>train</c> does for its first epoch (<see cref="TrainingLoop"/>, evaluation excluded), timed from
    /// reading the dataset's files to the last step, with each phase's seconds per step (<c>breakdown_s</c>).</summary>
    static void Epoch(TrainingConfig cfg, BenchOptions s, Dictionary<string, object?> r)
    {
        var total = Stopwatch.StartNew();
        using var session = Session.Create(cfg);
        double load = total.Elapsed.TotalSeconds;
        using var optimizer = Optimizer(session, s);
        // Phase times cost two clock reads per phase and leave every step bit-identical (TrainingLoopTests).
        var hooks = new StepHooks { Times = new PhaseTimes() };
        var epoch = Stopwatch.StartNew();
        foreach (var e in new TrainingLoop(session, optimizer) { Hooks = hooks }.Run())
            if (e is EpochDone) break;
        var t = hooks.Times;
        r["breakdown_s"] = new Dictionary<string, double>
        {
            ["data"] = t.Data / t.Steps, ["forward"] = t.Forward / t.Steps, ["backward"] = t.Backward / t.Steps, ["optimizer"] = t.Optimizer / t.Steps,
        };
        r["train_images"] = session.Train.Count;
        r["batch_size"] = cfg.Train.BatchSize;
        r["setup_s"] = load;
        r["epoch_train_s"] = epoch.Elapsed.TotalSeconds;
        r["epoch_total_s"] = total.Elapsed.TotalSeconds;
    }

    /// <summary>The data path alone: read the dataset's files into one tensor (or index a folder), then gather (and with
    /// data.augment augment) every batch of a shuffled epoch through the training loop's <see cref="BatchStream"/>.</summary>
    static void DataPath(TrainingConfig cfg, Dictionary<string, object?> r)
    {
        ResnetMnist.Native.NativeLoader.EnsureLoaded();
        Devices.ApplyThreads(cfg.Threads);
        var sw = Stopwatch.StartNew();
        // As train reads it; an image folder is indexed here and decoded per batch, so its batches_s holds the decoding and transforms.
        using var train = Session.TrainSplit(cfg, CPU);
        double load = sw.Elapsed.TotalSeconds;
        int n = train.Count, bs = cfg.Train.BatchSize;
        var augment = cfg.Data.Augmentation;
        var (order, _) = DataLoaderOrder.TrainEpoch(n, cfg.Train.Shuffle);
        using (order)
        using (var batches = new BatchStream(train, order, bs, augment))   // as the training loop takes them
            for (int b = 0; b < batches.Count; b++)
            {
                using var scope = NewDisposeScope();
                batches.Next();
            }
        r["train_images"] = n;
        r["load_s"] = load;
        r["batches_s"] = sw.Elapsed.TotalSeconds - load;
        r["total_s"] = sw.Elapsed.TotalSeconds;
    }

    /// <summary>A short real run (the trainer, evaluation and checkpoints included), resident memory read after every epoch.</summary>
    static void Memory(TrainingConfig cfg, Dictionary<string, object?> r)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"resnet-mnist-bench-{Environment.ProcessId}");
        try
        {
            var observer = new RssObserver();
            var outcome = TrainingRun.Train(cfg, folder, observer, options: new RunOptions(Force: true));
            r["train_images"] = outcome.Summary.TrainImages;
            r["epochs"] = cfg.Train.Epochs;
            r["rss_after_epoch_mib"] = observer.Rss;
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    sealed class RssObserver : ITrainingObserver
    {
        public List<double> Rss { get; } = [];
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { }
        public void EpochFinished(EpochRecord epoch, bool best) { GC.Collect(); GC.WaitForPendingFinalizers(); Rss.Add(ProcStatusMiB("VmRSS") ?? double.NaN); }
        public void Info(string message) { }
    }

    /// <summary>A <c>/proc/self/status</c> memory line (kB) in MiB; null where there is no such file.</summary>
    internal static double? ProcStatusMiB(string key) => ResnetMnist.Native.MachineInfo.ProcStatusMiB(key);
}
