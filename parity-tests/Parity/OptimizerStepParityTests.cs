using TorchSharp;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// Optimizer steps against PyTorch's. (1) Float32, one step from an empty state (seed-0 parameters and the gradients
/// of one backward pass): SGD (lr 0.01, momentum 0.9) and Adam (lr 1e-3), every parameter within assert_close's
/// defaults against the same kernel set's reference. (2) Float64, the fourth step of four, so the optimizer holds
/// state (momentum buffers, moment estimates) and momentum, nesterov, betas, eps and weight decay all change the
/// compared step: every step's loss and the fourth step's update (parameters after minus before), within 1e-10.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class OptimizerStepParityTests
{
    const double Rtol = 1.3e-6, Atol = 1e-5;
    // Float64: measured differences are ~1e-15 of the values; an update is a difference of nearby numbers, so its
    // bound is relative to the largest update of the tensor (atol = 1e-10 × max |update|) as well as elementwise.
    const double Tol64 = 1e-10;

    [TestCase("sgd", 0.01, 0.9)]
    [TestCase("adam", 1e-3, 0.0)]
    public void ParametersAfterOneStep(string name, double lr, double momentum)
    {
        var reference = Snapshot.Load("optimizer_step.json").GetProperty(name);
        var failures = new List<string>();
        double worst = Snapshot.WithReferenceThreads("optimizer_step.json", () =>
        {
            var (x, y) = Snapshot.InputBatch();
            using var m = Snapshot.SeedModel();
            m.train();
            using var opt = Optimizers.Create(new OptimizerConfig { Name = name, Lr = lr, Momentum = momentum }, m.parameters());
            opt.zero_grad();
            using (var loss = cross_entropy(m.forward(x), y)) loss.backward();
            opt.step();
            double w = 0;
            foreach (var (pname, p) in m.named_parameters())
            {
                var (rtol, atol) = Snapshot.Bound("optimizer_step.json", name, pname, Rtol, Atol);
                var d = Snapshot.Compare(p, reference.GetProperty(pname), rtol, atol);
                w = Math.Max(w, d.MaxAbs);
                if (d.WorstExcess > 0) failures.Add($"{pname}: {d.Where}");
            }
            return w;
        });
        TestContext.Out.WriteLine($"{name}: worst abs diff over all parameters {worst:E2}");
        Assert.That(failures, Is.Empty, $"{name} step differs from PyTorch: " + string.Join("; ", failures));
    }

    public static IEnumerable<string> StatefulOptimizers() =>
        Snapshot.Load("optimizer_state_step.json").GetProperty("optimizers").EnumerateObject().Select(p => p.Name).ToList();

    [TestCaseSource(nameof(StatefulOptimizers))]
    public void Float64StepFromANonEmptyState(string name)
    {
        var reference = Snapshot.Load("optimizer_state_step.json").GetProperty("optimizers").GetProperty(name);
        var spec = reference.GetProperty("optimizer");
        double Get(string key, double fallback) => spec.TryGetProperty(key, out var v) ? v.GetDouble() : fallback;
        var betas = spec.TryGetProperty("betas", out var b) ? b.EnumerateArray().Select(e => e.GetDouble()).ToArray() : new[] { 0.9, 0.999 };
        var cfg = new OptimizerConfig
        {
            Name = spec.GetProperty("cls").GetString()!.ToLowerInvariant(),
            Lr = Get("lr", 1e-3),
            Momentum = Get("momentum", 0),
            Nesterov = spec.TryGetProperty("nesterov", out var n) && n.GetBoolean(),
            WeightDecay = Get("weight_decay", 0),
            Betas = betas,
            Eps = Get("eps", 1e-8),
        };
        int steps = reference.GetProperty("losses").GetArrayLength();
        const int batch = 8;
        using var m = Snapshot.SeedModel();
        m.to(ScalarType.Float64);
        m.train();
        using var opt = Optimizers.Create(cfg, m.parameters());
        Dictionary<string, Tensor> before = new();
        var losses = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var (x, y) = Snapshot.InputBatch(batch, batch * i, ScalarType.Float64);
            opt.zero_grad();
            using var loss = cross_entropy(m.forward(x), y);
            loss.backward();
            if (i == steps - 1) before = m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            opt.step();
            losses.Add(loss.item<double>());
        }
        var expectedLosses = reference.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < steps; i++)
            Assert.That(losses[i], Is.EqualTo(expectedLosses[i]).Within(Tol64 * Math.Abs(expectedLosses[i])), $"loss of step {i + 1}");

        var failures = new List<string>();
        double worstUpdate = 0;
        foreach (var (pname, p) in m.named_parameters())
        {
            using var update = p.detach() - before[pname];
            var rec = reference.GetProperty("update").GetProperty(pname);
            double scale = rec.GetProperty("max_abs").GetDouble();
            var d = Snapshot.Compare(update, rec, Tol64, Tol64 * scale);
            worstUpdate = Math.Max(worstUpdate, d.MaxAbs / Math.Max(scale, 1e-300));
            if (d.WorstExcess > 0) failures.Add($"update of {pname}: {d.Where}");
        }
        TestContext.Out.WriteLine($"{name}: step {steps} update, worst abs diff / max |update| = {worstUpdate:E2}");
        Assert.That(failures, Is.Empty, $"{name} step {steps} differs from PyTorch: " + string.Join("; ", failures));
    }
}
