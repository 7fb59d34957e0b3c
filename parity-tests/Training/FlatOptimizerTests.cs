using NUnit.Framework;
using ResnetMnist.Native;
using ResnetMnist.Config;
using ResnetMnist.Model;
using ResnetMnist.Training;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// The flat-buffer optimizers (all parameters updated at once, by the fused one-pass kernels and by libtorch's
/// operations over the buffers) against TorchSharp's per-tensor SGD/Adam/AdamW, which the training parity tests hold
/// to PyTorch: the same ResNet-18 trained side by side on the same batches must end with bit-identical weights, losses
/// and optimizer state, in float32 and float64, in either memory layout, and across a save/load of the optimizer in
/// the middle. The fused kernels copy libtorch's rounding per kernel set, so this fixture runs under each kernel set
/// (<c>ATEN_CPU_CAPABILITY</c> = default, avx2, avx512) in CI.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class FlatOptimizerTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        string[] optimizers =
        [
            "{name: sgd, lr: 0.01}",
            "{name: sgd, lr: 0.01, momentum: 0.9}",
            "{name: sgd, lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 0.0005}",
            "{name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 0.0005}",
            "{name: adam, lr: 0.001}",
            "{name: adam, lr: 0.001, weight_decay: 0.0001}",
            "{name: adamw, lr: 0.001, weight_decay: 0.01}",
        ];
        foreach (var o in optimizers)
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
                yield return new TestCaseData(o, dtype, false, OptimizerStep.Fused, 0.0).SetName($"{o} {dtype}");
        // SGD's dampening (an option of TorchSharp's SGD the config does not expose), set on both optimizers' groups
        yield return new TestCaseData(optimizers[3], ScalarType.Float32, false, OptimizerStep.Fused, 0.25).SetName($"{optimizers[3]} dampening 0.25 Float32");
        yield return new TestCaseData(optimizers[2], ScalarType.Float32, true, OptimizerStep.Fused, 0.0).SetName($"{optimizers[2]} Float32 channels_last");
        yield return new TestCaseData(optimizers[5], ScalarType.Float32, true, OptimizerStep.Fused, 0.0).SetName($"{optimizers[5]} Float32 channels_last");
        // libtorch's operations over the flat buffers: the path for devices and dtypes the fused kernels do not cover
        yield return new TestCaseData(optimizers[2], ScalarType.Float32, false, OptimizerStep.Flat, 0.0).SetName($"{optimizers[2]} Float32 libtorch ops");
        yield return new TestCaseData(optimizers[6], ScalarType.Float32, false, OptimizerStep.Flat, 0.0).SetName($"{optimizers[6]} Float32 libtorch ops");
    }

    [TestCaseSource(nameof(Cases))]
    public void FlatStepsAreBitIdenticalToTorchSharpsPerTensorSteps(string optimizer, ScalarType dtype, bool channelsLast, OptimizerStep path, double dampening)
    {
        var cfg = ConfigLoader.Parse($"optimizer: {optimizer}\n", null).Optimizer;
        using var scope = NewDisposeScope();
        manual_seed(3);
        var perTensor = Models.resnet18(1, 10);
        var flat = Models.resnet18(1, 10);
        flat.load_state_dict(perTensor.state_dict());
        perTensor.to(dtype); flat.to(dtype);
        if (channelsLast) { MemoryFormat.ToChannelsLast(perTensor); MemoryFormat.ToChannelsLast(flat); }
        perTensor.train(); flat.train();
        var reference = Optimizers.Create(cfg, perTensor.parameters(), OptimizerStep.PerTensor);
        var flatOptimizer = Optimizers.Create(cfg, flat.parameters(), path);
        SetDampening(reference, dampening); SetDampening(flatOptimizer, dampening);

        var gen = new Generator(11);
        var batches = Enumerable.Range(0, 6).Select(_ => (x: rand(16, 1, 28, 28, generator: gen).to(dtype), y: randint(0, 10, 16, generator: gen))).ToList();
        for (int i = 0; i < 3; i++)
            Assert.That(Step(flat, flatOptimizer, batches[i]), Is.EqualTo(Step(perTensor, reference, batches[i])), $"loss at step {i + 1}");
        Assert.That(((IFlatStep)flatOptimizer).LastStepFlat, Is.True, "the flat path ran");
        Assert.That(((IFlatStep)flatOptimizer).LastStepFused, Is.EqualTo(path == OptimizerStep.Fused), "the fused kernels ran exactly when asked for");
        Assert.That(reference, Is.Not.InstanceOf<IFlatStep>(), "the reference steps tensor by tensor");
        AssertSameWeights(perTensor, flat, "after 3 steps");
        AssertSameState(reference, flatOptimizer, "after 3 steps");

        // A resume: a new flat optimizer loads the saved state, rebinds it to its buffers, and carries on identically.
        using var resumedOptimizer = Optimizers.Create(cfg, flat.parameters(), path);
        SetDampening(resumedOptimizer, dampening);
        resumedOptimizer.load_py(new MemoryStream(SavedState(flatOptimizer)));
        for (int i = 3; i < 6; i++)
            Assert.That(Step(flat, resumedOptimizer, batches[i]), Is.EqualTo(Step(perTensor, reference, batches[i])), $"loss at step {i + 1}, after the reload");
        Assert.That(((IFlatStep)resumedOptimizer).LastStepFlat, Is.True, "the flat path ran after the reload");
        Assert.That(((IFlatStep)resumedOptimizer).LastStepFused, Is.EqualTo(path == OptimizerStep.Fused), "the fused kernels ran after the reload exactly when asked for");
        AssertSameWeights(perTensor, flat, "after 3 more steps from the reloaded state");
        AssertSameState(reference, resumedOptimizer, "after the reload and 3 more steps");
        reference.Dispose(); flatOptimizer.Dispose();
    }

    [Test]
    public void ParametersOfMixedDtypesFallBackToThePerTensorStep()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(ones(4, dtype: ScalarType.Float32));
        var b = new Parameter(ones(4, dtype: ScalarType.Float64));
        var cfg = ConfigLoader.Parse("optimizer: {name: adam, lr: 0.1}\n", null).Optimizer;
        using var opt = Optimizers.Create(cfg, [a, b]);
        (a.sum() + b.sum().to(ScalarType.Float32)).backward();
        opt.step();
        Assert.That(((IFlatStep)opt).LastStepFlat, Is.False, "mixed dtypes cannot share one buffer");
        // Adam's first step moves every weight by lr (sign of the gradient) whichever path ran
        Assert.That(a.data<float>().ToArray(), Is.All.EqualTo(0.9f).Within(1e-6));
        Assert.That(b.data<double>().ToArray(), Is.All.EqualTo(0.9).Within(1e-6));
    }

    [TestCase("{name: adam, lr: 0.001}")]
    [TestCase("{name: sgd, lr: 0.001, momentum: 0.9}")]
    public void TheHeapIsTrimmedWhenTensorsMoveIntoTheBuffersNotInEveryStep(string optimizer)
    {
        using var scope = NewDisposeScope();
        var model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3));
        var batch = (randn(5, 8), tensor(new long[] { 0, 1, 2, 1, 0 }));
        long before = NativeHeap.Trims;
        using var opt = Optimizers.Create(ConfigLoader.Parse($"optimizer: {optimizer}\n", null).Optimizer, model.parameters().ToList());
        Assert.That(NativeHeap.Trims, Is.EqualTo(before + 1), "the weights' old storages are handed back once the optimizer holds them");
        Step(model, opt, batch);
        long afterFirst = NativeHeap.Trims; // SGD's momentum moves into its buffer at its first step
        for (int i = 0; i < 3; i++) Step(model, opt, batch);
        Assert.That(((IFlatStep)opt).LastStepFlat, Is.True);
        Assert.That(NativeHeap.Trims, Is.EqualTo(afterFirst), "a step that moved nothing trims nothing");
    }

    /// <summary>
    /// Second moments that are zero (a gradient that is always 0) or subnormal (a tiny gradient squared), which the
    /// fused Adam takes the IEEE square root of instead of MKL's: bit-identical weights and state to TorchSharp's
    /// step after several steps, in a vector body and a scalar tail, beside ordinary values.
    /// </summary>
    // eps far below √v of the tiny values, so that each of their square roots decides a weight's bits (with the
    // default 1e-8, eps would swamp a wrong last bit)
    [TestCase("{name: adam, lr: 0.001, eps: 1e-40}", ScalarType.Float32)]
    [TestCase("{name: adam, lr: 0.001, eps: 1e-300}", ScalarType.Float64)]
    [TestCase("{name: adamw, lr: 0.001, weight_decay: 0.01, eps: 1e-40}", ScalarType.Float32)]
    [TestCase("{name: adamw, lr: 0.001, weight_decay: 0.01, eps: 1e-300}", ScalarType.Float64)]
    public void ZeroAndSubnormalSecondMomentsStepAsTorchSharpsAdam(string optimizer, ScalarType dtype)
    {
        var cfg = ConfigLoader.Parse($"optimizer: {optimizer}\n", null).Optimizer;
        using var scope = NewDisposeScope();
        // gradient magnitudes whose squares, times 1 - beta2, are subnormal (and underflow to 0 for the smallest)
        double tiny = dtype == ScalarType.Float32 ? 1e-21 : 1e-160, tinier = dtype == ScalarType.Float32 ? 1e-40 : 1e-310;
        var gen = new Generator(5);
        Tensor Gradient(long n)
        {
            var kind = randint(0, 4, n, generator: gen);
            var magnitude = where(kind.eq(0), 0.0, where(kind.eq(1), tiny, where(kind.eq(2), tinier, 0.1)));
            return (magnitude * (rand(n, generator: gen, dtype: ScalarType.Float64) + 0.5) * (randint(0, 2, n, generator: gen) * 2 - 1)).to(dtype);
        }
        // 5,000 elements: whole 2,048-element chunks of the vector body and a partial one; 37: a scalar tail
        long[] sizes = [5000, 37];
        var grads = sizes.Select(Gradient).ToArray();
        var start = sizes.Select(n => rand(n, generator: gen, dtype: ScalarType.Float64).to(dtype)).ToArray();
        Parameter[] Parameters() => start.Select(t => new Parameter(t.clone())).ToArray();
        var (perTensorParams, fusedParams) = (Parameters(), Parameters());
        var reference = Optimizers.Create(cfg, perTensorParams, OptimizerStep.PerTensor);
        var fused = Optimizers.Create(cfg, fusedParams, OptimizerStep.Fused);
        foreach (var (parameters, opt) in new[] { (perTensorParams, reference), (fusedParams, fused) })
            for (int step = 0; step < 4; step++)
            {
                opt.zero_grad();
                parameters.Zip(grads, (p, g) => (p * g).sum()).Aggregate((a, b) => a + b).backward();
                opt.step();
            }
        Assert.That(((IFlatStep)fused).LastStepFused, Is.True, "the fused kernels ran");
        Assert.That(grads.Select(g => g.eq(0).sum().item<long>()).Sum(), Is.GreaterThan(0), "some gradients are 0");
        var v = fused.state_dict().State.SelectMany(st => st.GetType().GetFields().Select(f => f.GetValue(st))).OfType<Tensor>()
            .Where(t => t.numel() == 5000).ToList();
        Assert.That(v.Any(t => t.abs().gt(0).logical_and(t.abs().lt(dtype == ScalarType.Float32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308)).any().item<bool>()),
            Is.True, "some second moments are subnormal");
        for (int i = 0; i < sizes.Length; i++)
            Assert.That(SameBits(perTensorParams[i], fusedParams[i]), Is.True, $"parameter {i} ({sizes[i]} elements) differs after 4 steps");
        AssertSameState(reference, fused, "after 4 steps");
        reference.Dispose(); fused.Dispose();
    }

    static void SetDampening(OptimizerHelper optimizer, double dampening)
    {
        foreach (var g in optimizer.ParamGroups)
            if (g is ParamGroup { Options: SGD.Options o }) o.dampening = dampening;
    }

    static double Step(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, (Tensor x, Tensor y) batch) =>
        TrainingLoop.Step(model, optimizer, batch.x, batch.y);

    static void AssertSameWeights(nn.Module a, nn.Module b, string when)
    {
        var sb = b.state_dict();
        foreach (var (name, t) in a.state_dict())
            Assert.That(SameBits(t, sb[name]), Is.True, $"{name} differs {when}");
    }

    /// <summary>Every field of every parameter's optimizer state (step counts, moments, momentum buffers) is equal.</summary>
    static void AssertSameState(OptimizerHelper a, OptimizerHelper b, string when)
    {
        var (sa, sb) = (a.state_dict().State, b.state_dict().State);
        Assert.That(sb, Has.Count.EqualTo(sa.Count));
        for (int i = 0; i < sa.Count; i++)
            foreach (var f in sa[i].GetType().GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
            {
                object? va = f.GetValue(sa[i]), vb = f.GetValue(sb[i]);
                if (va is Tensor ta) Assert.That(vb is Tensor tb && SameBits(ta, tb), Is.True, $"state {i}.{f.Name} differs {when}");
                else Assert.That(vb, Is.EqualTo(va), $"state {i}.{f.Name} differs {when}");
            }
    }

    /// <summary>The same shape and the same bytes, element for element (so -0 and 0, or two NaNs' payloads, count as different).</summary>
    static bool SameBits(Tensor a, Tensor b)
    {
        using var ca = a.contiguous();
        using var cb = b.contiguous();
        return a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && ca.bytes.SequenceEqual(cb.bytes);
    }

    static byte[] SavedState(OptimizerHelper optimizer) => CheckpointStore.OptimizerBytes(optimizer);
}
