using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Model;
using ResnetMnist.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// One optimizer step from the seed-0 parameters and the gradients of one backward pass: SGD (lr 0.01,
/// momentum 0.9) and Adam (lr 1e-3), every parameter after the step within float32 defaults (rtol 1.3e-6, atol 1e-5).
/// </summary>
[TestFixture, Category("Parity")]
public sealed class OptimizerStepParityTests
{
    const double Rtol = 1.3e-6, Atol = 1e-5;

    [TestCase("sgd", 0.01, 0.9)]
    [TestCase("adam", 1e-3, 0.0)]
    public void ParametersAfterOneStep(string name, double lr, double momentum)
    {
        var reference = Snapshot.Load("optimizer_step.json").GetProperty(name);
        var (x, y) = Snapshot.InputBatch();
        using var m = Snapshot.SeedModel();
        m.train();
        using var opt = Optimizers.Create(new OptimizerConfig { Name = name, Lr = lr, Momentum = momentum }, m.parameters());
        opt.zero_grad();
        using (var loss = cross_entropy(m.forward(x), y)) loss.backward();
        opt.step();

        var failures = new List<string>();
        double worst = 0;
        foreach (var (pname, p) in m.named_parameters())
        {
            var d = Snapshot.Compare(p, reference.GetProperty(pname), Rtol, Atol);
            worst = Math.Max(worst, d.MaxAbs);
            if (d.WorstExcess > 0) failures.Add($"{pname}: {d.Where}");
        }
        TestContext.Out.WriteLine($"{name}: worst abs diff over all parameters {worst:E2}");
        Assert.That(failures, Is.Empty, $"{name} step differs from PyTorch: " + string.Join("; ", failures));
    }
}
