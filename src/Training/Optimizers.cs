using ResnetMnist.Config;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>How an optimizer's <c>step()</c> updates the parameters; each falls back to the next where it does not apply.</summary>
public enum OptimizerStep
{
    /// <summary>One pass in C# SIMD over flat buffers (CPU, float32/float64), else <see cref="Flat"/>: what <c>train</c> uses.</summary>
    Fused,
    /// <summary>libtorch's operations over flat buffers, chunk by chunk (any device), else <see cref="PerTensor"/>.</summary>
    Flat,
    /// <summary>TorchSharp's own step, tensor by tensor.</summary>
    PerTensor,
}

/// <summary>Builds the optimizer named in the config, with PyTorch's semantics and defaults.</summary>
public static class Optimizers
{
    /// <summary>
    /// The optimizer of <paramref name="c"/> over <paramref name="parameters"/>: TorchSharp's SGD/Adam/AdamW, stepping
    /// all parameters at once over flat buffers (bit-identical to the per-tensor update; see <c>FlatParameters</c> and
    /// <c>FusedOptimizerKernels</c>), or, with <see cref="OptimizerStep.PerTensor"/>, TorchSharp's own per-tensor step.
    /// </summary>
    public static OptimizerHelper Create(OptimizerConfig c, IEnumerable<Parameter> parameters, OptimizerStep step = OptimizerStep.Fused)
    {
        var ps = parameters.ToList();
        bool flat = step != OptimizerStep.PerTensor, fused = step == OptimizerStep.Fused;
        return (c.Name, flat) switch
        {
            (OptimizerKind.Sgd, true) => new FlatSgd(ps, c.Lr, c.Momentum, c.WeightDecay, c.Nesterov, fused),
            (OptimizerKind.Adam, true) => new FlatAdam(ps, c.Lr, c.Betas[0], c.Betas[1], c.Eps, c.WeightDecay, fused),
            (OptimizerKind.AdamW, true) => new FlatAdamW(ps, c.Lr, c.Betas[0], c.Betas[1], c.Eps, c.WeightDecay, fused),
            (OptimizerKind.Sgd, false) => optim.SGD(ps, c.Lr, momentum: c.Momentum, weight_decay: c.WeightDecay, nesterov: c.Nesterov),
            (OptimizerKind.Adam, false) => optim.Adam(ps, c.Lr, beta1: c.Betas[0], beta2: c.Betas[1], eps: c.Eps, weight_decay: c.WeightDecay),
            (OptimizerKind.AdamW, false) => optim.AdamW(ps, c.Lr, beta1: c.Betas[0], beta2: c.Betas[1], eps: c.Eps, weight_decay: c.WeightDecay),
            _ => throw new NotSupportedException($"optimizer {c.Name}"),
        };
    }

    /// <summary>Sets the learning rate of every parameter group.</summary>
    public static void SetLr(OptimizerHelper optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
    }

    /// <summary>
    /// Sets SGD's momentum, or Adam's / AdamW's beta1, of every parameter group (what OneCycleLR's cycle_momentum
    /// does to <c>group['momentum']</c> / <c>group['betas'][0]</c>). TorchSharp's optimizers read these options
    /// from the group at every <c>step()</c>, as PyTorch's do; an SGD built with momentum 0 starts its momentum
    /// buffer at the first step with a non-zero momentum, as PyTorch's does.
    /// </summary>
    public static void SetMomentum(OptimizerHelper optimizer, double momentum)
    {
        foreach (var g in optimizer.ParamGroups)
        {
            var options = (g as ParamGroup)?.Options;
            switch (options)
            {
                case SGD.Options o: o.momentum = momentum; break;
                case Adam.Options o: o.beta1 = momentum; break;
                case AdamW.Options o: o.beta1 = momentum; break;
                default: throw new ArgumentException($"cannot set the momentum of {options?.GetType().Name ?? "an unknown optimizer"}");
            }
        }
    }
}
