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
/// products, so its rounding differs more than a forward output's). Float64: loss and gradients within 1e-10, from a
/// rounding model of the backward pass (see <c>Tol64</c>). The optimizer step is compared on its own, from identical
/// inputs (OptimizerStepParityTests), so these gradients and that step are each checked against their own bound.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class GradientParityTests
{
    const double Rtol = 1e-4, Atol = 1e-5;
    // Float64 (rtol and atol): a worst-case rounding model, not a measurement. A float64 sum of n products is within
    // n·u·Σ|products| of the exact one (u = 2^-53; Higham's γ_n), and two implementations that sum in different orders
    // differ by at most twice that. The backward pass chains ~20 such reductions, the longest 512·3·3 = 4608 terms
    // (layer4's input gradients; conv1's weight gradient sums 8·14·14 = 1568): Σ 2·n·u ≈ 20 · 2 · 4608 · 1.1e-16 ≈
    // 1e-11 of the magnitudes, times the gain of train-mode BatchNorm's backward (1/σ of batch statistics over as
    // few as 8 values in layer4), so 1e-10. Measured: ~3e-14 (README); a wrong operation moves gradients by 1e-3 or more.
    const double Tol64 = 1e-10;
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
