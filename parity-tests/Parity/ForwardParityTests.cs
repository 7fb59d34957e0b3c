using NUnit.Framework;
using ResnetMnist.Model;
using ResnetMnist.Native;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// Every top-level layer's output for the fixed 8-image batch, in eval mode and in train mode (batch statistics),
/// against PyTorch's, within torch.testing.assert_close's float32 defaults (rtol 1.3e-6, atol 1e-5).
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ForwardParityTests
{
    // torch.testing.assert_close defaults for float32; measured worst here: see the README (parity section).
    const double Rtol = 1.3e-6, Atol = 1e-5;

    Dictionary<string, Tensor> _eval = null!, _train = null!, _running = null!;

    [OneTimeSetUp]
    public void Run()
    {
        var (x, _) = Snapshot.InputBatch();
        using (var m = Snapshot.SeedModel())
        {
            m.eval();
            using var _g = no_grad();
            _eval = m.ForwardLayers(x).ToDictionary(o => o.Name, o => o.Output);
        }
        using (var m = Snapshot.SeedModel())
        {
            m.train();
            using var _g = no_grad();
            _train = m.ForwardLayers(x).ToDictionary(o => o.Name, o => o.Output);
            _running = m.state_dict().Where(kv => kv.Key.EndsWith("running_mean") || kv.Key.EndsWith("running_var"))
                .ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        }
    }

    public static IEnumerable<string> Layers => ResNet.LayerNames;

    [TestCaseSource(nameof(Layers))]
    public void EvalModeLayerOutput(string layer) =>
        Snapshot.AssertClose(_eval[layer], Snapshot.Load("forward_eval.json").GetProperty("layers").GetProperty(layer), Rtol, Atol, $"eval {layer}");

    [TestCaseSource(nameof(Layers))]
    public void TrainModeLayerOutput(string layer) =>
        Snapshot.AssertClose(_train[layer], Snapshot.Load("forward_train.json").GetProperty("layers").GetProperty(layer), Rtol, Atol, $"train {layer}");

    [Test]
    public void TrainModeRunningStatistics()
    {
        var stats = Snapshot.Load("forward_train.json").GetProperty("running_stats");
        int n = 0;
        foreach (var p in stats.EnumerateObject())
        {
            Assert.That(_running, Contains.Key(p.Name));
            Snapshot.AssertClose(_running[p.Name], p.Value, Rtol, Atol, p.Name);
            n++;
        }
        Assert.That(n, Is.EqualTo(40), "BatchNorm running_mean/running_var entries");
    }

    public static IEnumerable<string> Parameters()
    {
        NativeLoader.EnsureLoaded();
        using var m = Models.resnet18(1, 10);
        return m.named_parameters().Select(p => p.name).ToList();
    }
}
