using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// Optimizer steps against PyTorch's. (1) Float32, one step from an empty state (seed-0 parameters and the gradients
/// of one backward pass): SGD (lr 0.01, momentum 0.9) and Adam (lr 1e-3), every parameter within assert_close's
/// defaults against the same kernel set's reference. (2) Float64, one step from a non-empty state on identical
/// inputs: the reference writes parameters, gradients and optimizer state (momentum buffers, moment estimates, step
/// count) taken from its own training run, and its result of one step over them; the tool's optimizer
/// (<see cref="Optimizers.Create"/>, the flat path it trains with) is loaded with exactly those values, steps once,
/// and parameters and state must agree to float64 rounding (see <see cref="RoundingBound"/>). Gradients are compared
/// on their own in GradientParityTests; nothing here chains steps, so no earlier difference is amplified.
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
        var failures = new List<string>();
        double worst = Snapshot.WithReferenceThreads("optimizer_step.json", () =>
        {
            var (x, y) = Snapshot.InputBatch();
            using var m = Snapshot.SeedModel();
            m.train();
            using var opt = Optimizers.Create(new OptimizerConfig { Name = ConfigNames.Parse<OptimizerKind>(name), Lr = lr, Momentum = momentum }, m.parameters());
            TrainingLoop.Step(m, opt, x, y);
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

    /// <summary>Unit roundoff of float64 (half an ulp of 1).</summary>
    const double U = 1.1102230246251565e-16; // 2^-53

    /// <summary>
    /// Roundings on the longest path from the inputs to any output element, counted generously: Adam/AdamW's
    /// weight decay (2), exp_avg (2), exp_avg_sq (3), sqrt (2: MKL's is not correctly rounded), / sqrt(bias
    /// correction 2) (1), + eps (1), the step size lr / bias correction 1 and the bias corrections themselves (3),
    /// exp_avg / denom (1), × step size (1), + the parameter (1): 17; SGD's weight decay, momentum, Nesterov and
    /// update: 8. A fused multiply-add (used by some kernel sets and not others) removes one rounding.
    /// </summary>
    const int Roundings = 20;

    /// <summary>
    /// The float64 error model: every operation rounds once (unit roundoff u = 2^-53), and all of them are linear
    /// in their rounding errors with non-negative coefficients once the terms are taken in absolute value. So each
    /// implementation's result lies within Roundings · u · S of the exact one, where S is the same computation done
    /// on |terms| (exp_avg' = β1·|m| + (1−β1)·|g'| instead of β1·m + (1−β1)·g', and so on; a subtraction whose
    /// operands nearly cancel then still gets the bound of its operands), and two implementations differ by at most
    /// twice that: |C# − PyTorch| ≤ 2 · Roundings · u · S ≈ 4.4e-15 · S, a few ulp of the largest term.
    /// </summary>
    static double RoundingBound(double magnitude) => 2 * Roundings * U * magnitude;

    /// <summary>The |terms| computation S of each output of one step (see <see cref="RoundingBound"/>), per buffer name and "param".</summary>
    static Dictionary<string, double[]> Magnitudes(OptimizerConfig c, long stepBefore, double[] p, double[] g, IReadOnlyDictionary<string, double[]> state)
    {
        int n = p.Length;
        var param = new double[n];
        var result = new Dictionary<string, double[]> { ["param"] = param };
        if (c.Name == OptimizerKind.Sgd)
        {
            var buf = new double[n];
            result["momentum_buffer"] = buf;
            for (int i = 0; i < n; i++)
            {
                double grad = Math.Abs(g[i]) + c.WeightDecay * Math.Abs(p[i]);
                buf[i] = c.Momentum * Math.Abs(state["momentum_buffer"][i]) + grad;
                double d = c.Nesterov ? grad + c.Momentum * buf[i] : buf[i];
                param[i] = Math.Abs(p[i]) + c.Lr * d;
            }
            return result;
        }
        bool decoupled = c.Name == OptimizerKind.AdamW;
        double b1 = c.Betas[0], b2 = c.Betas[1];
        long t = stepBefore + 1;
        double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
        var m = new double[n];
        var v = new double[n];
        result["exp_avg"] = m;
        result["exp_avg_sq"] = v;
        for (int i = 0; i < n; i++)
        {
            double w = decoupled ? Math.Abs(p[i]) * (1 - c.Lr * c.WeightDecay) : Math.Abs(p[i]);
            double grad = Math.Abs(g[i]) + (decoupled ? 0 : c.WeightDecay * Math.Abs(p[i]));
            m[i] = b1 * Math.Abs(state["exp_avg"][i]) + (1 - b1) * grad;
            v[i] = b2 * state["exp_avg_sq"][i] + (1 - b2) * grad * grad;
            double denom = Math.Sqrt(v[i]) / Math.Sqrt(bc2) + c.Eps;
            param[i] = w + c.Lr / bc1 * m[i] / denom;
        }
        return result;
    }

    static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    static OptimizerConfig ConfigOf(JsonElement spec)
    {
        double Get(string key, double fallback) => spec.TryGetProperty(key, out var v) ? v.GetDouble() : fallback;
        return new OptimizerConfig
        {
            Name = ConfigNames.Parse<OptimizerKind>(spec.GetProperty("cls").GetString()!),
            Lr = Get("lr", 1e-3),
            Momentum = Get("momentum", 0),
            Nesterov = spec.TryGetProperty("nesterov", out var n) && n.GetBoolean(),
            WeightDecay = Get("weight_decay", 0),
            Betas = spec.TryGetProperty("betas", out var b) ? Doubles(b) : [0.9, 0.999],
            Eps = Get("eps", 1e-8),
        };
    }

    /// <summary>The state tensors of one parameter, by PyTorch's names (momentum_buffer; exp_avg, exp_avg_sq).</summary>
    static Dictionary<string, Tensor> Buffers(OptimizerState s) => s switch
    {
        SGD.State x => new() { ["momentum_buffer"] = x.momentum_buffer },
        AdamW.State a => new() { ["exp_avg"] = a.exp_avg, ["exp_avg_sq"] = a.exp_avg_sq },
        Adam.State a => new() { ["exp_avg"] = a.exp_avg, ["exp_avg_sq"] = a.exp_avg_sq },
        _ => throw new ArgumentException($"unknown optimizer state {s.GetType().Name}"),
    };

    /// <summary>Loads the reference's state into the optimizer's own state object for one parameter.</summary>
    static void LoadState(OptimizerState s, IReadOnlyDictionary<string, double[]> values, long stepBefore)
    {
        Tensor T(string name) => tensor(values[name], dtype: ScalarType.Float64);
        switch (s)
        {
            case SGD.State x: x.momentum_buffer = T("momentum_buffer"); break;
            case AdamW.State a: a.exp_avg.copy_(T("exp_avg")); a.exp_avg_sq.copy_(T("exp_avg_sq")); a.step = stepBefore; break;
            case Adam.State a: a.exp_avg.copy_(T("exp_avg")); a.exp_avg_sq.copy_(T("exp_avg_sq")); a.step = stepBefore; break;
            default: throw new ArgumentException($"unknown optimizer state {s.GetType().Name}");
        }
    }

    [TestCaseSource(nameof(StatefulOptimizers))]
    public void Float64StepFromANonEmptyState(string name)
    {
        var reference = Snapshot.Load("optimizer_state_step.json").GetProperty("optimizers").GetProperty(name);
        var cfg = ConfigOf(reference.GetProperty("optimizer"));
        long stepBefore = reference.GetProperty("step_before").ValueKind == JsonValueKind.Null ? 0 : reference.GetProperty("step_before").GetInt64();
        var inputs = reference.GetProperty("inputs").EnumerateObject().ToList();
        using var scope = NewDisposeScope();
        var parameters = inputs.Select(i => new Parameter(tensor(Doubles(i.Value.GetProperty("param")), dtype: ScalarType.Float64))).ToList();
        using var opt = Optimizers.Create(cfg, parameters);
        var states = opt.state_dict().State;
        Assert.That(states, Has.Count.EqualTo(parameters.Count), "one state per parameter");
        var inputState = new List<Dictionary<string, double[]>>();
        for (int k = 0; k < inputs.Count; k++)
        {
            var rec = inputs[k].Value;
            using (no_grad()) parameters[k].grad = tensor(Doubles(rec.GetProperty("grad")), dtype: ScalarType.Float64);
            var values = rec.EnumerateObject().Where(f => f.Name is not ("param" or "grad")).ToDictionary(f => f.Name, f => Doubles(f.Value));
            LoadState(states[k], values, stepBefore);
            inputState.Add(values);
        }
        opt.step();
        Assert.That(((IFlatStep)opt).LastStepFlat, Is.True, "the tool trains with the flat step: that is the one compared");

        var failures = new List<string>();
        double worstUlpScaled = 0, worstAbs = 0;
        int compared = 0;
        for (int k = 0; k < inputs.Count; k++)
        {
            var expected = reference.GetProperty("outputs").GetProperty(inputs[k].Name);
            var rec = inputs[k].Value;
            var bounds = Magnitudes(cfg, stepBefore, Doubles(rec.GetProperty("param")), Doubles(rec.GetProperty("grad")), inputState[k]);
            var actual = Buffers(states[k]);
            actual["param"] = parameters[k];
            foreach (var (what, t) in actual)
            {
                var a = t.detach().contiguous().data<double>().ToArray();
                var e = Doubles(expected.GetProperty(what));
                Assert.That(a, Has.Length.EqualTo(e.Length), $"{inputs[k].Name} {what}");
                for (int i = 0; i < a.Length; i++, compared++)
                {
                    double d = Math.Abs(a[i] - e[i]), bound = RoundingBound(bounds[what][i]);
                    worstAbs = Math.Max(worstAbs, d);
                    worstUlpScaled = Math.Max(worstUlpScaled, d / (U * Math.Max(bounds[what][i], double.Epsilon)));
                    if (d > bound) failures.Add($"{inputs[k].Name} {what}[{i}]: C# {a[i]:R}, PyTorch {e[i]:R}, |diff| {d:E2} > bound {bound:E2}");
                }
            }
        }
        TestContext.Out.WriteLine($"{name}: {compared} values after one step, worst |diff| {worstAbs:E2}, worst |diff| / (u·S) {worstUlpScaled:F2} (bound {2 * Roundings})");
        Assert.That(failures, Is.Empty, $"{name}: one step from identical inputs differs from PyTorch's beyond float64 rounding: " + string.Join("; ", failures.Take(5)));
    }
}
