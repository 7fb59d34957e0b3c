using TorchSharp;
using NUnit.Framework;
using ResnetMnist.Model;
using ResnetMnist.Native;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// Every top-level layer's output for the fixed 8-image batch, in eval mode and in train mode (batch statistics),
/// against PyTorch's. Float32: within torch.testing.assert_close's defaults (rtol 1.3e-6, atol 1e-5) against the
/// reference of the same kernel set (<see cref="Snapshot.ReferenceSet"/>), computed with the reference's thread
/// count; against another kernel set's reference, atol grows to a multiple of PyTorch's own cross-kernel floor.
/// Float64 (the model built in float32, then converted): 1e-10, on any CPU.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ForwardParityTests
{
    // torch.testing.assert_close defaults for float32; measured worst differences: README (parity section).
    const double Rtol = 1.3e-6, Atol = 1e-5;
    // Float64: both sides agree to ~1e-15 relative per operation; 1e-10 catches any real deviation (a wrong op moves
    // values by 1e-3 or more) while staying clear of summation-order effects on any CPU.
    const double Rtol64 = 1e-10, Atol64 = 1e-10;

    Dictionary<string, Tensor> _eval = null!, _train = null!, _running = null!, _eval64 = null!, _train64 = null!;

    [OneTimeSetUp]
    public void Run()
    {
        (_eval, _train, _running) = Snapshot.WithReferenceThreads("forward_train.json", () =>
        {
            var (x, _) = Snapshot.InputBatch();
            return (Outputs(x, train: false, ScalarType.Float32, out _), Outputs(x, train: true, ScalarType.Float32, out var running), running);
        });
        var (x64, _) = Snapshot.InputBatch(dtype: ScalarType.Float64);
        _eval64 = Outputs(x64, train: false, ScalarType.Float64, out _);
        _train64 = Outputs(x64, train: true, ScalarType.Float64, out _);
    }

    static Dictionary<string, Tensor> Outputs(Tensor x, bool train, ScalarType dtype, out Dictionary<string, Tensor> running)
    {
        using var m = Snapshot.SeedModel();
        m.to(dtype);
        m.train(train);
        using var _g = no_grad();
        var outputs = m.ForwardLayers(x).ToDictionary(o => o.Name, o => o.Output);
        running = m.state_dict().Where(kv => kv.Key.EndsWith("running_mean") || kv.Key.EndsWith("running_var"))
            .ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        return outputs;
    }

    public static IEnumerable<string> Layers => ResNet.LayerNames;

    void Float32(string file, string layer, Tensor actual, string? kernelSet = null)
    {
        var (rtol, atol) = Snapshot.Bound(file, "layers", layer, Rtol, Atol, kernelSet);
        var set = kernelSet ?? Snapshot.ReferenceSet;
        Snapshot.AssertClose(actual, Snapshot.Load(file, set).GetProperty("layers").GetProperty(layer), rtol, atol,
            $"{file} {layer} (C# {Snapshot.KernelSet} vs PyTorch {set}, atol {atol:E1})");
    }

    [TestCaseSource(nameof(Layers))]
    public void EvalModeLayerOutput(string layer) => Float32("forward_eval.json", layer, _eval[layer]);

    [TestCaseSource(nameof(Layers))]
    public void TrainModeLayerOutput(string layer) => Float32("forward_train.json", layer, _train[layer]);

    [TestCaseSource(nameof(Layers))]
    public void EvalModeLayerOutputFloat64(string layer) =>
        Snapshot.AssertClose(_eval64[layer], Snapshot.Load("forward_float64.json").GetProperty("layers").GetProperty("eval").GetProperty(layer), Rtol64, Atol64, $"float64 eval {layer}");

    [TestCaseSource(nameof(Layers))]
    public void TrainModeLayerOutputFloat64(string layer) =>
        Snapshot.AssertClose(_train64[layer], Snapshot.Load("forward_float64.json").GetProperty("layers").GetProperty("train").GetProperty(layer), Rtol64, Atol64, $"float64 train {layer}");

    /// <summary>
    /// The bound used where no same-kernel reference exists, checked for real: this process's float32 train-mode
    /// outputs against every other kernel set's PyTorch reference must stay within
    /// max(assert_close defaults, <see cref="Snapshot.FloorMultiple"/> × PyTorch's cross-kernel floor).
    /// </summary>
    [Test]
    public void OtherKernelSetsAgreeWithinTheirFloorBound()
    {
        var others = Snapshot.Available.Where(k => k != Snapshot.KernelSet).ToList();
        Assert.That(others, Is.Not.Empty, "reference data of at least one other kernel set is committed");
        foreach (var other in others)
            foreach (var layer in ResNet.LayerNames)
            {
                Float32("forward_train.json", layer, _train[layer], other);
                Float32("forward_eval.json", layer, _eval[layer], other);
            }
    }

    [Test]
    public void TrainModeRunningStatistics()
    {
        var stats = Snapshot.Load("forward_train.json").GetProperty("running_stats");
        int n = 0;
        foreach (var p in stats.EnumerateObject())
        {
            Assert.That(_running, Contains.Key(p.Name));
            var (rtol, atol) = Snapshot.Bound("forward_train.json", "running_stats", p.Name, Rtol, Atol);
            Snapshot.AssertClose(_running[p.Name], p.Value, rtol, atol, p.Name);
            n++;
        }
        Assert.That(n, Is.EqualTo(40), "BatchNorm running_mean/running_var entries");
    }

    [Test]
    public void ReferenceWasComputedWithTheKernelSetItIsFiledUnder()
    {
        foreach (var set in Snapshot.Available)
            Assert.That(Snapshot.Load("forward_train.json", set).GetProperty("meta").GetProperty("kernel_set").GetString(), Is.EqualTo(set));
        TestContext.Out.WriteLine($"libtorch kernel set: {Snapshot.KernelSet}; reference: {Snapshot.ReferenceSet} (same: {Snapshot.SameKernel}); available: {string.Join(", ", Snapshot.Available)}");
    }

    public static IEnumerable<string> Parameters()
    {
        NativeLoader.EnsureLoaded();
        using var m = Models.resnet18(1, 10);
        return m.named_parameters().Select(p => p.name).ToList();
    }
}
