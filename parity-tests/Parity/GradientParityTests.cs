using NUnit.Framework;
using ResnetMnist.Model;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// One backward pass (seed-0 model, train mode, cross-entropy on the fixed batch): the loss within float32
/// defaults and every parameter's gradient within rtol 1e-4, atol 1e-5 (TorchSharp's own test tolerance; a
/// gradient sums thousands of products, so its rounding differs more than a forward output's).
/// </summary>
[TestFixture, Category("Parity")]
public sealed class GradientParityTests
{
    const double Rtol = 1e-4, Atol = 1e-5;
    Dictionary<string, Tensor> _grads = null!;
    double _loss;

    [OneTimeSetUp]
    public void Run()
    {
        var (x, y) = Snapshot.InputBatch();
        using var m = Snapshot.SeedModel();
        m.train();
        using var loss = cross_entropy(m.forward(x), y);
        loss.backward();
        _loss = loss.item<float>();
        _grads = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }

    [Test]
    public void Loss()
    {
        double expected = Snapshot.Load("gradients.json").GetProperty("loss").GetDouble();
        TestContext.Out.WriteLine($"loss C# {_loss:R}, PyTorch {expected:R}, diff {Math.Abs(_loss - expected):E2}");
        Assert.That(_loss, Is.EqualTo(expected).Within(1e-5 + 1.3e-6 * Math.Abs(expected)));
    }

    [TestCaseSource(typeof(ForwardParityTests), nameof(ForwardParityTests.Parameters))]
    public void Gradient(string parameter) =>
        Snapshot.AssertClose(_grads[parameter], Snapshot.Load("gradients.json").GetProperty("grads").GetProperty(parameter), Rtol, Atol, $"grad {parameter}");
}
