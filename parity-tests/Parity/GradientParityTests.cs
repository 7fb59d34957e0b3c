using TorchSharp;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// One backward pass (seed-0 model, train mode, cross-entropy on the fixed batch). Float32, against the same
/// kernel set's reference with the reference's thread count: the loss within assert_close's defaults and every
/// parameter's gradient within rtol 1e-4, atol 1e-5 (TorchSharp's own test tolerance; a gradient sums thousands of
/// products, so its rounding differs more than a forward output's). Float64: loss and gradients within 1e-10.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class GradientParityTests
{
    const double Rtol = 1e-4, Atol = 1e-5;
    const double Tol64 = 1e-10; // float64: see ForwardParityTests
    Dictionary<string, Tensor> _grads = null!, _grads64 = null!;
    double _loss, _loss64;

    [OneTimeSetUp]
    public void Run()
    {
        (_loss, _grads) = Snapshot.WithReferenceThreads("gradients.json", () => Backward(ScalarType.Float32));
        (_loss64, _grads64) = Backward(ScalarType.Float64);
    }

    static (double, Dictionary<string, Tensor>) Backward(ScalarType dtype)
    {
        var (x, y) = Snapshot.InputBatch(dtype: dtype);
        using var m = Snapshot.SeedModel();
        m.to(dtype);
        m.train();
        // The library's training step, its gradients read between backward and the optimizer's update.
        using var opt = Optimizers.Create(new OptimizerConfig { Name = OptimizerKind.Sgd, Lr = 0.01 }, m.parameters());
        Dictionary<string, Tensor> grads = [];
        double loss = TrainingLoop.Step(m, opt, x, y, new StepHooks
        {
            AfterBackward = () => grads = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope()),
        });
        return (loss, grads);
    }

    [Test]
    public void Loss()
    {
        double expected = Snapshot.Load("gradients.json").GetProperty("loss").GetDouble();
        TestContext.Out.WriteLine($"loss C# {_loss:R}, PyTorch {expected:R}, diff {Math.Abs(_loss - expected):E2}");
        Assert.That(_loss, Is.EqualTo(expected).Within(1e-5 + 1.3e-6 * Math.Abs(expected)));
    }

    [Test]
    public void LossFloat64()
    {
        double expected = Snapshot.Load("gradients_float64.json").GetProperty("loss").GetDouble();
        TestContext.Out.WriteLine($"float64 loss C# {_loss64:R}, PyTorch {expected:R}, diff {Math.Abs(_loss64 - expected):E2}");
        Assert.That(_loss64, Is.EqualTo(expected).Within(Tol64 * Math.Abs(expected)));
    }

    [TestCaseSource(typeof(ForwardParityTests), nameof(ForwardParityTests.Parameters))]
    public void Gradient(string parameter)
    {
        var (rtol, atol) = Snapshot.Bound("gradients.json", "grads", parameter, Rtol, Atol);
        Snapshot.AssertClose(_grads[parameter], Snapshot.Load("gradients.json").GetProperty("grads").GetProperty(parameter), rtol, atol, $"grad {parameter}");
    }

    [TestCaseSource(typeof(ForwardParityTests), nameof(ForwardParityTests.Parameters))]
    public void GradientFloat64(string parameter) =>
        Snapshot.AssertClose(_grads64[parameter], Snapshot.Load("gradients_float64.json").GetProperty("grads").GetProperty(parameter), Tol64, Tol64, $"float64 grad {parameter}");
}
