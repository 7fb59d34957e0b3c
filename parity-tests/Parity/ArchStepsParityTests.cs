using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// Every architecture of the registry against torchvision, one entry each, cheap enough for the deepest
/// (wide_resnet101_2, 127M parameters): after <c>manual_seed(0)</c> the (1 channel, 10 classes) model's state_dict
/// bit-identical to PyTorch's (sha256 per tensor, same kernel set; keys and shapes too), then the same model in float64,
/// eval mode, 2 SGD steps on a 2×1×32×32 input: losses within 1e-9 relative (the parity command's float64 loss bound),
/// step 1's top-level layer outputs, the gradients and the weights after the steps within 1e-10 (its layer and
/// gradient bounds: float64 PyTorch and TorchSharp measured 6.8e-14 apart per step). Eval mode: train-mode BatchNorm
/// on 2 images of 32×32 leaves layer4 2 values per channel, where a 1e-15 change of the weights was measured to move
/// the output by 1e-4 (see reference/make_arch_snapshots.py); train-mode forward is compared in ArchParityTests. References:
/// <c>reference/snapshots/&lt;kernel set&gt;/steps_&lt;arch&gt;.json</c> (reference/make_arch_snapshots.py).
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ArchStepsParityTests
{
    const double LossRtol = 1e-9, Rtol64 = 1e-10, Atol64 = 1e-10;

    public static IEnumerable<string> Archs => ArchSpecs.Names;

    [TestCaseSource(nameof(Archs))]
    public void InitAndFloat64StepsMatchTorchvision(string arch)
    {
        var file = $"steps_{arch}.json";
        var snap = Snapshot.Load(file);
        var meta = snap.GetProperty("meta");
        manual_seed(0);
        using var model = Models.Create(arch, 1, 10);
        Assert.That(model.state_dict().Count, Is.EqualTo(snap.GetProperty("count").GetInt32()));
        Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(snap.GetProperty("parameters").GetInt64()), "parameters");
        bool KernelDependent(string key) => Snapshot.Available
            .Select(ks => Snapshot.Load(file, ks).GetProperty("init").GetProperty(key).GetProperty("sha256").GetString()).Distinct().Count() > 1;
        var mismatches = ArchParityTests.InitMismatches(model, snap.GetProperty("init"), KernelDependent, Snapshot.SameKernel);
        Assert.That(mismatches, Is.Empty, "tensors that differ from PyTorch's init: " + string.Join(", ", mismatches));

        model.to(ScalarType.Float64);
        model.eval();
        int hw = (int)snap.GetProperty("input").GetProperty("shape")[2].GetInt64();
        using var g = new Generator(1234);
        using var x = rand(new long[] { 2, 1, hw, hw }, dtype: ScalarType.Float64, generator: g);
        Snapshot.AssertClose(x, snap.GetProperty("input"), 1e-15, 1e-15, "input (torch.rand, seed 1234)");
        using var y = tensor(meta.GetProperty("labels").EnumerateArray().Select(e => e.GetInt64()).ToArray());
        var opt = optim.SGD(model.parameters(), meta.GetProperty("lr").GetDouble());
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var losses = snap.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double worstLoss = 0;
        for (int step = 0; step < losses.Length; step++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var layers = model.ForwardLayers(x);
            if (step == 0)
                foreach (var (name, output) in layers)
                    Snapshot.AssertClose(output, snap.GetProperty("layers_step1").GetProperty(name), Rtol64, Atol64, $"{arch} step 1 {name}");
            var loss = nn.functional.cross_entropy(layers[^1].Output, y);
            loss.backward();
            double l = loss.item<double>(), rel = Math.Abs(l - losses[step]) / Math.Abs(losses[step]);
            worstLoss = Math.Max(worstLoss, rel);
            Assert.That(rel, Is.LessThanOrEqualTo(LossRtol), $"{arch} step {step + 1} loss: C# {l:R}, PyTorch {losses[step]:R}");
            if (step == 0)
                foreach (var p in snap.GetProperty("grads_step1").EnumerateObject())
                    Snapshot.AssertClose(parameters[p.Name].grad!, p.Value, Rtol64, Atol64, $"{arch} step 1 grad {p.Name}");
            opt.step();
            foreach (var (_, output) in layers) output.Dispose();
        }
        foreach (var p in snap.GetProperty("final").EnumerateObject())
            Snapshot.AssertClose(parameters[p.Name], p.Value, Rtol64, Atol64, $"{arch} after {losses.Length} steps {p.Name}");
        TestContext.Out.WriteLine($"{arch}: {model.state_dict().Count} tensors bit-identical at init; {losses.Length} float64 steps, worst relative loss difference {worstLoss:E2} " +
            $"(C# kernel set {Snapshot.KernelSet}, reference {Snapshot.ReferenceSet})");
    }

    [Test]
    public void SnapshotsWereComputedWithTheKernelSetTheyAreFiledUnder()
    {
        foreach (var set in Snapshot.Available)
            foreach (var arch in Archs)
                Assert.That(Snapshot.Load($"steps_{arch}.json", set).GetProperty("meta").GetProperty("kernel_set").GetString(), Is.EqualTo(set), $"{set}/{arch}");
    }
}
