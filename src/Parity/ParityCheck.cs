using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.Parity;

/// <summary>
/// Runs one config through the library (in this process) and through the reference PyTorch program (a child
/// process, same seed, same thread count, same CPU kernel set), for the first N training steps in the
/// real order (shuffled DataLoader batches, scheduler, the evaluation draws at an epoch end), and compares: the
/// initial weights (exact), every top-level layer's output in the first step's forward, the gradients after the
/// first backward, the per-step losses and learning rates, and the weights after N steps.
/// </summary>
public static class ParityCheck
{
    /// <summary>
    /// Bounds, float64. Measured (README, "Check parity on your own config"; SGD + Nesterov + weight decay + cosine,
    /// 20 steps): losses 4.3e-13 relative at worst, layer outputs 1.6e-14 and gradients 1.6e-14 of their largest
    /// magnitude, weights after 20 steps 4.2e-13; with AdamW, 20 steps: losses 5.9e-12, weights 7.1e-11 (Adam's
    /// normalised step turns last-bit differences of tiny gradients into weight differences of up to lr, hence the
    /// weights' looser bound); earlier measurements (README table) reach 7e-12 for losses with ImageNet weights. The bounds leave three to four orders of magnitude above that for other CPUs and
    /// BLAS builds, and stay far below any real difference (a wrong batch, optimizer detail or scheduler value
    /// changes the loss at the 1e-3 level or more). Learning rates are computed with PyTorch's own arithmetic
    /// (measured identical), so they must agree to the last bits.
    /// </summary>
    public static readonly ParityBounds Float64 = new(Loss: 1e-9, Layer: 1e-10, Gradient: 1e-10, FinalWeights: 1e-8, Lr: 1e-12, FirstStepOnly: false);

    /// <summary>
    /// Bounds, float32. The first step is judged by fixed bounds: layer outputs 1e-5 of the largest magnitude (measured
    /// 1.7e-6 abs on values ~1.5 in train mode; assert_close's float32 atol is 1e-5); gradients 1e-4 (TorchSharp's own
    /// tests' rtol: a gradient sums many products); first loss 1e-5 (measured 8.7e-8). Later steps and the final
    /// weights are chaotic (PyTorch differs from itself by 1e-2 relative within 10 Adam steps when only the thread
    /// count changes), so they are judged against PyTorch's own noise floor for the same config (<see cref="NoiseFloor"/>):
    /// within <see cref="NoiseFactor"/> times it, and never tighter than these first-step bounds
    /// (<see cref="FinalWeightsFloor"/> for the weights).
    /// </summary>
    public static readonly ParityBounds Float32 = new(Loss: 1e-5, Layer: 1e-5, Gradient: 1e-4, FinalWeights: double.PositiveInfinity, Lr: 1e-12, FirstStepOnly: true);

    /// <summary>
    /// How far above PyTorch's own spread (the reference against itself with another thread count) the tool may be in
    /// float32. The tool and the reference differ by summation order as PyTorch's two runs do, but not by the same
    /// amount at the start, and chaotic growth carries whatever difference there is. Measured ratios of
    /// tool-vs-PyTorch over PyTorch-vs-itself: at most 5.0 over 30 steps of SGD and Adam with batch 32 (README, "Why
    /// float64 for curves"), 19.5 at step 2 of Adam with batch 4 (2.54e-4 against 1.3e-5; ParityNoiseFloorTests'
    /// config, AVX-512, 2 threads). 30 is 1.5 times the largest. A real difference (a wrong batch, scheduler value or
    /// optimizer detail) changes the loss by 1e-3 relative or more from the step it first acts.
    /// </summary>
    public const double NoiseFactor = 30;

    /// <summary>Least bound on the float32 final weights (relative): one float32 update's rounding, assert_close's atol.</summary>
    public const double FinalWeightsFloor = 1e-5;

    /// <summary>Why the reference program cannot run this config as the tool does, or null when it can.</summary>
    public static string? Unsupported(TrainingConfig cfg)
    {
        // Every architecture: reference/resnet_mnist.py reads the same reference/archs.json as ArchSpecs.
        if (cfg.Model.Freeze.Count > 0) return "model.freeze: the reference program trains every module; use []";
        if (cfg.Model.BnEval) return "model.bn_eval: the reference program keeps BatchNorm in train mode; use false";
        if (!cfg.Model.Pretrained.IsNone && cfg.Model.Conv1Init != Conv1Init.Random)
            return $"model.conv1_init: {cfg.Model.Conv1Init.Name()}: the reference program replaces conv1 with a fresh random one; use random";
        if (cfg.Model.InitFrom is not null)
            return "model.init_from: the reference program has no warm start; use null (compare the warm-started run with `evaluate` instead)";
        foreach (var (key, path) in new[] { ("data.root", cfg.Data.Root), ("model.pretrained", cfg.Model.Pretrained.Text) })
            if (path.Any(char.IsControl))
                return $"{key}: '{Core.Printable.Escape(path, 120)}' holds a control character, which the reference program's config cannot carry; rename it";
        return null;
    }

    /// <summary>
    /// Reads, with the tool's own restricted readers, every file of the user's the reference program will unpickle,
    /// so that PyTorch never runs what such a file asks for: the dataset's pickles (<see cref="IDatasetFiles.CheckPickles"/>:
    /// CIFAR's batches and meta file, which torchvision reads with <c>pickle.load</c>; IDX files are not pickles).
    /// Pretrained weights were read through the state_dict checks by the session already.
    /// </summary>
    public static void CheckReferenceInputs(TrainingConfig cfg) => cfg.Data.Dataset.Files.CheckPickles(cfg.Data.Root);

    /// <summary>Runs the check and writes nothing; <see cref="ParityFiles.Write"/> writes parity.json/.md/.png.</summary>
    /// <param name="cfg">The config, as loaded (its device is replaced by cpu: the reference runs on the CPU).</param>
    /// <param name="steps">Training steps to compare (fewer when the config has fewer).</param>
    /// <param name="dtype">Float64 (exact parity) or Float32; null = the config's <c>train.dtype</c>.</param>
    /// <param name="reference">The reference program to run.</param>
    /// <param name="workDir">Folder for the reference's config, output and log.</param>
    public static ParityReport Run(TrainingConfig cfg, int steps, DtypeKind? dtype, ReferenceProgram reference, string workDir, Action<string>? log = null)
    {
        if (steps < 1) throw new ConfigException("--steps: must be at least 1");
        if (Unsupported(cfg) is string why) throw new ConfigException(why);
        cfg = cfg with
        {
            Device = DeviceKind.Cpu,
            Train = cfg.Train with { Dtype = dtype ?? cfg.Train.Dtype },
            Data = cfg.Data with { Root = Path.GetFullPath(cfg.Data.Root) },
        };
        var bounds = cfg.Train.Dtype == DtypeKind.Float64 ? Float64 : Float32;
        ResnetMnist.Outputs.OutputFolder.Subfolder(workDir);

        // The tool's session first: it sets the thread count the reference is then given, and resolves pretrained
        // weights (converting mlnet, finding the torch.hub file) to the file the reference loads.
        CheckReferenceInputs(cfg);
        using var session = Session.Create(cfg, Splits.TrainAndTest, log: log);
        int threads = get_num_threads();
        var refCfg = cfg with { Model = cfg.Model with { Pretrained = ReferenceWeights(cfg.Model.Pretrained, workDir) } };
        var refConfig = Path.Combine(workDir, "config.yaml");
        AtomicFile.WriteAllText(refConfig, ConfigSchema.ToYaml(refCfg));
        var dumpDir = ResnetMnist.Outputs.OutputFolder.Subfolder(Path.Combine(workDir, "dump"), removeLinks: true);
        log?.Invoke($"reference: {reference.Python} (torch {reference.TorchVersion}), {steps} steps, {threads} threads");
        reference.Run([refConfig, "--parity-dump", dumpDir, "--steps", steps.ToString(CultureInfo.InvariantCulture)],
            threads, Path.Combine(workDir, "log.txt"));

        foreach (var file in new[] { "parity.pt", "parity.json" })
            if (!File.Exists(Path.Combine(dumpDir, file)))
                throw new ReferenceFailedException($"the reference program exited 0 but wrote no {Path.Combine(dumpDir, file)} (its output is in {Path.Combine(workDir, "log.txt")})");
        var refTensors = WeightsFile.ReadStateDict(Path.Combine(dumpDir, "parity.pt"));
        try
        {
            var (refLosses, refLrs) = ReadReferenceLosses(Path.Combine(dumpDir, "parity.json"));
            log?.Invoke($"tool: {steps} steps");
            var tool = RunTool(session, steps);
            try
            {
                var noise = cfg.Train.Dtype == DtypeKind.Float32
                    ? MeasureNoiseFloor(reference, refConfig, workDir, steps, threads, refLosses, refTensors, log) : null;
                return Compare(cfg, bounds, threads, reference.TorchVersion, tool, refTensors, refLosses, refLrs, noise) with { RequestedSteps = steps };
            }
            finally { tool.Dispose(); }
        }
        finally { foreach (var t in refTensors.Values) t.Dispose(); }
    }

    /// <summary>
    /// PyTorch's own float32 spread for this config: the reference program run again, identical but for the thread
    /// count (1 when the check runs more, else 2), which changes only the order of parallel sums, as a different CPU, BLAS
    /// or library version does. Its per-step losses and final weights are compared with the first reference run's.
    /// (Changing the kernel set instead would change the initial weights themselves: a different run, not noise.)
    /// </summary>
    static NoiseFloor MeasureNoiseFloor(ReferenceProgram reference, string refConfig, string workDir, int steps, int threads,
        List<double> refLosses, Dictionary<string, Tensor> refTensors, Action<string>? log)
    {
        int other = threads == 1 ? 2 : 1;
        var dumpDir = ResnetMnist.Outputs.OutputFolder.Subfolder(Path.Combine(workDir, "noise-dump"), removeLinks: true);
        log?.Invoke($"noise floor: the reference again with {other} thread{(other == 1 ? "" : "s")} instead of {threads}");
        reference.Run([refConfig, "--parity-dump", dumpDir, "--steps", steps.ToString(CultureInfo.InvariantCulture)],
            other, Path.Combine(workDir, "noise-log.txt"));
        foreach (var file in new[] { "parity.pt", "parity.json" })
            if (!File.Exists(Path.Combine(dumpDir, file)))
                throw new ReferenceFailedException($"the reference program exited 0 but wrote no {Path.Combine(dumpDir, file)} (its output is in {Path.Combine(workDir, "noise-log.txt")})");
        var (losses, _) = ReadReferenceLosses(Path.Combine(dumpDir, "parity.json"));
        var again = WeightsFile.ReadStateDict(Path.Combine(dumpDir, "parity.pt"));
        try
        {
            static Dictionary<string, Tensor> Final(Dictionary<string, Tensor> d) => d.Where(kv => kv.Key.StartsWith("final.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key["final.".Length..], kv => kv.Value);
            var (worst, name, _) = Worst(Final(again), Final(refTensors), "noise floor final weights", []);
            var rel = Enumerable.Range(0, Math.Min(losses.Count, refLosses.Count)).Select(i => Rel(losses[i], refLosses[i])).ToList();
            return new NoiseFloor(other, rel, worst, name);
        }
        finally { foreach (var t in again.Values) t.Dispose(); }
    }

    /// <summary>The pretrained file the reference loads: mlnet/torchvision resolved to their .pth; safetensors re-saved as .pth.</summary>
    static PretrainedChoice ReferenceWeights(PretrainedChoice source, string workDir)
    {
        var path = PretrainedWeights.ResolvePath(source);
        if (path is null) return PretrainedChoice.None;
        path = Path.GetFullPath(path);
        if (WeightsFile.DetectFormat(path) == WeightsFormat.TorchZip) return new(null, path, path);
        // The reference reads torch.save files only: hand it the same tensors in that format.
        var pth = Path.Combine(workDir, "pretrained.pth");
        var sd = WeightsFile.ReadStateDict(path);
        try
        {
            AtomicFile.Write(pth, f => PyTorchPickler.PickleStateDict(f, sd, leaveOpen: true));
        }
        finally { foreach (var t in sd.Values) t.Dispose(); }
        return new(null, pth, pth);
    }

    /// <summary>
    /// The losses and learning rates the reference wrote in its <c>parity.json</c>; a file that is missing, truncated or
    /// not of that shape is a <see cref="ReferenceFailedException"/> naming it.
    /// </summary>
    public static (List<double> Losses, List<double> Lrs) ReadReferenceLosses(string file)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(ResnetMnist.Outputs.RunDirectory.ReadRecord(file, "the reference's parity.json"));
            static List<double> Read(System.Text.Json.JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToList();
            return (Read(doc.RootElement.GetProperty("losses")), Read(doc.RootElement.GetProperty("lrs")));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or KeyNotFoundException or FormatException or IOException or ResnetMnist.Outputs.RunDirectoryException)
        {
            throw new ReferenceFailedException($"{file}: the reference's output is truncated or corrupt ({TorchArchive.FirstLine(e.Message)}); allowed: a JSON object with lists of numbers losses and lrs");
        }
    }

    /// <summary>What the tool computed; every tensor is a CPU copy owned by this object.</summary>
    sealed class ToolRun : IDisposable
    {
        public Dictionary<string, Tensor> Init = [], Layers = [], Grads = [], Final = [];
        public List<double> Losses = [], Lrs = [];
        public void Dispose()
        {
            foreach (var d in new[] { Init, Layers, Grads, Final })
                foreach (var t in d.Values) t.Dispose();
        }
    }

    static Dictionary<string, Tensor> StateCopy(ResNet model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone().DetachFromDisposeScope());

    /// <summary>The first <paramref name="steps"/> steps of the training loop <c>train</c> runs (<see cref="TrainingLoop"/>).</summary>
    static ToolRun RunTool(Session session, int steps)
    {
        var model = session.Model;
        var run = new ToolRun { Init = StateCopy(model) };
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = Optimizers.Create(session.Config.Optimizer, parameters);
        var loop = new TrainingLoop(session, optimizer);
        Tensor? logits = null;

        // The first step's forward records every top-level layer's output (copies: relu is in place) and returns
        // the same logits model.forward would; the graph behind them is the one backward runs through.
        loop.Hooks.Forward = x =>
        {
            var outputs = model.ForwardLayers(x);
            foreach (var (name, output) in outputs)
                run.Layers[name] = output.detach().cpu().clone().DetachFromDisposeScope();
            foreach (var (_, output) in outputs.Take(outputs.Count - 1)) output.Dispose();
            return logits = outputs[^1].Output;
        };
        loop.Hooks.AfterBackward = () =>
        {
            foreach (var (name, p) in model.named_parameters())
                if (p.grad is Tensor g) run.Grads[name] = g.detach().cpu().clone().DetachFromDisposeScope();
        };

        // An epoch that ends inside the compared steps makes the test loader's draw (the trainer evaluates then,
        // which changes nothing else); one that ends with the last compared step does not, as the loop is left first.
        foreach (var e in loop.Run())
        {
            if (e is not StepDone step) continue;
            loop.Hooks.Forward = null;
            loop.Hooks.AfterBackward = null;
            logits?.Dispose();
            logits = null;
            run.Losses.Add(step.Record.Loss);
            run.Lrs.Add(step.Record.Lr);
            if (run.Losses.Count == steps) break;
        }
        run.Final = StateCopy(model);
        return run;
    }

    /// <summary>
    /// The relative loss difference allowed at each step: the fixed bound, or with a float32 <paramref name="noise"/>
    /// floor, from step 2 on <see cref="NoiseFactor"/> times the largest spread PyTorch showed up to that step (never
    /// less than the fixed bound); float32 without a noise floor judges step 1 only (later steps: infinity).
    /// </summary>
    public static List<double> AllowedLossDifferences(ParityBounds bounds, int steps, NoiseFloor? noise)
    {
        var allowed = new List<double>(steps);
        double spread = 0;
        for (int i = 0; i < steps; i++)
        {
            if (noise is not null && i < noise.LossDifferences.Count) spread = Math.Max(spread, noise.LossDifferences[i]);
            allowed.Add(!bounds.FirstStepOnly || i == 0 ? bounds.Loss
                : noise is null ? double.PositiveInfinity
                : Math.Max(bounds.Loss, NoiseFactor * spread));
        }
        return allowed;
    }

    static ParityReport Compare(TrainingConfig cfg, ParityBounds bounds, int threads, string torchVersion, ToolRun tool,
        Dictionary<string, Tensor> reference, List<double> refLosses, List<double> refLrs, NoiseFloor? noise)
    {
        var failures = new List<string>();
        Dictionary<string, Tensor> Prefixed(string prefix) => reference.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

        // Initial weights: exact, tensor by tensor.
        var refInit = Prefixed("init.");
        double initMax = 0;
        int initDiffering = 0;
        foreach (var (key, r) in refInit)
        {
            if (!tool.Init.TryGetValue(key, out var t)) { failures.Add($"initial weights: the tool has no {key}"); continue; }
            var d = Diff(t, r);
            if (d.MaxAbs != 0) initDiffering++;
            initMax = Math.Max(initMax, d.MaxAbs);
        }
        foreach (var key in tool.Init.Keys.Where(k => !refInit.ContainsKey(k))) failures.Add($"initial weights: the reference has no {key}");
        if (initDiffering > 0) failures.Add($"initial weights: {initDiffering} of {refInit.Count} tensors differ (max abs {Fmt(initMax)}); they must be identical");

        var layers = new Dictionary<string, TensorDifference>();
        var refLayers = Prefixed("layer.");
        foreach (var name in ResNet.LayerNames)
        {
            if (!refLayers.TryGetValue(name, out var r) || !tool.Layers.TryGetValue(name, out var t)) { failures.Add($"layer {name}: missing output"); continue; }
            var d = Diff(t, r);
            layers[name] = d;
            if (!(d.MaxRel <= bounds.Layer)) failures.Add($"layer {name}: relative difference {Fmt(d.MaxRel)} > {Fmt(bounds.Layer)}");
        }

        var (gradWorst, gradName, gradAbs) = Worst(tool.Grads, Prefixed("grad."), "gradient", failures);
        if (!(gradWorst <= bounds.Gradient)) failures.Add($"gradient of {gradName}: relative difference {Fmt(gradWorst)} > {Fmt(bounds.Gradient)}");

        // Integer buffers (num_batches_tracked) must agree exactly; float tensors are measured relative to their largest magnitude.
        var (finalWorst, finalName, finalAbs) = Worst(tool.Final, Prefixed("final."), "final weights", failures);
        double finalAllowed = noise is null ? bounds.FinalWeights : Math.Max(FinalWeightsFloor, NoiseFactor * noise.FinalWeights);
        if (!(finalWorst <= finalAllowed))
            failures.Add($"final weights, {finalName}: relative difference {Fmt(finalWorst)} > {Fmt(finalAllowed)}{(noise is null ? "" : $" ({NoiseFactor} × PyTorch's own {Fmt(noise.FinalWeights)})")}");

        if (tool.Losses.Count != refLosses.Count) failures.Add($"steps: the tool ran {tool.Losses.Count}, the reference {refLosses.Count}");
        int count = Math.Min(tool.Losses.Count, refLosses.Count);
        var lossRel = Enumerable.Range(0, count).Select(i => Rel(tool.Losses[i], refLosses[i])).ToList();
        var lrRel = Enumerable.Range(0, Math.Min(tool.Lrs.Count, refLrs.Count)).Select(i => Rel(tool.Lrs[i], refLrs[i])).ToList();
        double worstLoss = lossRel.DefaultIfEmpty(0).Max();
        int worstStep = lossRel.Count == 0 ? 0 : lossRel.IndexOf(worstLoss) + 1;
        var allowed = AllowedLossDifferences(bounds, count, noise);
        for (int i = 0; i < count; i++)
            if (!(lossRel[i] <= allowed[i]))
            {
                failures.Add($"loss at step {i + 1}: relative difference {Fmt(lossRel[i])} > {Fmt(allowed[i])}{(bounds.FirstStepOnly && i > 0 ? $" ({NoiseFactor} × PyTorch's own spread so far)" : "")}");
                break;
            }
        double worstLr = lrRel.DefaultIfEmpty(0).Max();
        if (!(worstLr <= bounds.Lr)) failures.Add($"learning rate: relative difference {Fmt(worstLr)} > {Fmt(bounds.Lr)}");

        return new ParityReport
        {
            Passed = failures.Count == 0,
            Dtype = cfg.Train.Dtype.Name(),
            Steps = count,
            Threads = threads,
            AtenCpuCapability = ResnetMnist.Native.KernelSet.Current,
            ReferenceTorch = torchVersion,
            WorstRelativeLossDifference = worstLoss,
            WorstLossStep = worstStep,
            ToolLosses = tool.Losses,
            ReferenceLosses = refLosses,
            RelativeLossDifferences = lossRel,
            ToolLrs = tool.Lrs,
            ReferenceLrs = refLrs,
            WorstRelativeLrDifference = worstLr,
            InitTensors = refInit.Count,
            InitTensorsDiffering = initDiffering,
            InitMaxAbsDifference = initMax,
            Layers = layers,
            GradientsWorstRelativeDifference = gradWorst,
            GradientsWorstParameter = gradName,
            GradientsMaxAbsDifference = gradAbs,
            FinalWeightsWorstRelativeDifference = finalWorst,
            FinalWeightsWorstTensor = finalName,
            FinalWeightsMaxAbsDifference = finalAbs,
            Bounds = bounds,
            AllowedLossDifferences = allowed,
            FinalWeightsAllowed = finalAllowed,
            NoiseFloor = noise,
            Failures = failures,
        };
    }

    static (double Worst, string Name, double MaxAbs) Worst(Dictionary<string, Tensor> tool, Dictionary<string, Tensor> reference, string what, List<string> failures)
    {
        double worst = 0, maxAbs = 0;
        string name = "";
        if (reference.Count == 0) failures.Add($"{what}: the reference wrote none");
        foreach (var (key, r) in reference)
        {
            if (!tool.TryGetValue(key, out var t)) { failures.Add($"{what}: the tool has no {key}"); continue; }
            var d = Diff(t, r);
            maxAbs = Math.Max(maxAbs, d.MaxAbs);
            if (!r.is_floating_point() && d.MaxAbs != 0) failures.Add($"{what}: {key} differs ({Fmt(d.MaxAbs)})");
            if (d.MaxRel > worst || name == "") (worst, name) = (d.MaxRel, key);
        }
        return (worst, name, maxAbs);
    }

    /// <summary>Max |tool − reference|, and that divided by max |reference| (0 when both are all zero).</summary>
    static TensorDifference Diff(Tensor tool, Tensor reference)
    {
        using var scope = NewDisposeScope();
        if (!tool.shape.SequenceEqual(reference.shape)) return new TensorDifference(double.PositiveInfinity, double.PositiveInfinity);
        var t = tool.to_type(ScalarType.Float64);
        var r = reference.to_type(ScalarType.Float64);
        double maxAbs = t.numel() == 0 ? 0 : (t - r).abs().max().item<double>();
        double scale = r.numel() == 0 ? 0 : r.abs().max().item<double>();
        double rel = maxAbs == 0 ? 0 : scale == 0 ? double.PositiveInfinity : maxAbs / scale;
        return new TensorDifference(maxAbs, rel);
    }

    static double Rel(double tool, double reference) =>
        tool == reference ? 0 : reference == 0 ? double.PositiveInfinity : Math.Abs(tool - reference) / Math.Abs(reference);

    internal static string Fmt(double v) => v.ToString("0.##E+0", CultureInfo.InvariantCulture);
}
