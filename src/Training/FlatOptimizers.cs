using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

// TorchSharp's SGD, Adam and AdamW with the same state, options, param groups and checkpoint format, whose step()
// updates all parameters at once over FlatParameters' buffers: on the CPU in float32/float64 as one pass in C# SIMD
// (FusedOptimizerKernels), elsewhere as libtorch's operations chunk by chunk (about ten libtorch calls per chunk
// instead of eight per parameter tensor, ≈ 500 for ResNet-18). Each update is the exact operation sequence of
// TorchSharp's (and PyTorch 1.13's single-tensor) implementation, rounded as libtorch rounds it, element for element,
// so the results are bit-identical (FlatOptimizerTests compares weights, state and saved files byte for byte).
// Whatever the flat path does not cover (several param groups, a closure, amsgrad, maximize, parameters of mixed
// dtypes) goes to the base class's step.

/// <summary>An optimizer that can update all parameters at once over flat buffers.</summary>
public interface IFlatStep
{
    /// <summary>Whether the latest <c>step()</c> ran over the flat buffers (false: TorchSharp's per-tensor step ran, or none yet).</summary>
    bool LastStepFlat { get; }

    /// <summary>Whether the latest <c>step()</c> ran as one fused pass (<see cref="FusedOptimizerKernels"/>) over the flat buffers.</summary>
    bool LastStepFused { get; }

    /// <summary>Copies state that replaced the flat slices (<c>load_py</c> puts its own tensors in) into the flat
    /// buffers now, puts tensors over the slices in its place and disposes it, instead of at the next step: a resume
    /// then holds the optimizer state once (the memory returns at the next full collection with finalizers).</summary>
    void AdoptLoadedState();
}

/// <summary><see cref="Adam"/> (L2 weight decay added to the gradient), updated over flat buffers.</summary>
sealed class FlatAdam : Adam, IFlatStep
{
    readonly FlatParameters _flat;
    public bool LastStepFlat { get; private set; }

    readonly bool _fused;
    public bool LastStepFused { get; private set; }

    /// <param name="fused">Step in one pass where <see cref="FusedOptimizerKernels"/> covers the buffers; false: libtorch's operations over them.</param>
    public FlatAdam(IReadOnlyList<Parameter> parameters, double lr, double beta1, double beta2, double eps, double weightDecay, bool fused)
        : base(parameters, lr, beta1, beta2, eps, weightDecay) =>
        (_flat, _fused) = (FlatAdamStep.Bind(parameters, _state), fused);

    public override Tensor step(Func<Tensor>? closure = null)
    {
        var path = closure is null ? FlatAdamStep.Step(_flat, _parameter_groups, _state, decoupled: false, _fused) : FlatPath.None;
        (LastStepFlat, LastStepFused) = (path != FlatPath.None, path == FlatPath.Fused);
        return path != FlatPath.None ? null! : base.step(closure);
    }

    public override void zero_grad() { if (!_flat.ZeroGrads()) base.zero_grad(); }

    public void AdoptLoadedState() => FlatAdamStep.Rebind(_flat, _state);

    protected override void Dispose(bool disposing) { base.Dispose(disposing); if (disposing) _flat.Dispose(); }
}

/// <summary><see cref="AdamW"/> (decoupled weight decay: the weights shrink by <c>lr · weight_decay</c> first), updated over flat buffers.</summary>
sealed class FlatAdamW : AdamW, IFlatStep
{
    readonly FlatParameters _flat;
    public bool LastStepFlat { get; private set; }

    readonly bool _fused;
    public bool LastStepFused { get; private set; }

    /// <param name="fused">Step in one pass where <see cref="FusedOptimizerKernels"/> covers the buffers; false: libtorch's operations over them.</param>
    public FlatAdamW(IReadOnlyList<Parameter> parameters, double lr, double beta1, double beta2, double eps, double weightDecay, bool fused)
        : base(parameters, lr, beta1, beta2, eps, weightDecay) =>
        (_flat, _fused) = (FlatAdamStep.Bind(parameters, _state), fused);

    public override Tensor step(Func<Tensor>? closure = null)
    {
        var path = closure is null ? FlatAdamStep.Step(_flat, _parameter_groups, _state, decoupled: true, _fused) : FlatPath.None;
        (LastStepFlat, LastStepFused) = (path != FlatPath.None, path == FlatPath.Fused);
        return path != FlatPath.None ? null! : base.step(closure);
    }

    public override void zero_grad() { if (!_flat.ZeroGrads()) base.zero_grad(); }

    public void AdoptLoadedState() => FlatAdamStep.Rebind(_flat, _state);

    protected override void Dispose(bool disposing) { base.Dispose(disposing); if (disposing) _flat.Dispose(); }
}

/// <summary>How a flat optimizer's step ran.</summary>
enum FlatPath
{
    /// <summary>Not over the flat buffers: the per-tensor step must run.</summary>
    None,
    /// <summary>libtorch's operations over the flat buffers, chunk by chunk.</summary>
    Ops,
    /// <summary>One pass of <see cref="FusedOptimizerKernels"/>.</summary>
    Fused,
}

static class FlatAdamStep
{
    /// <summary>Flat buffers for the parameters, bound at once with their (zero) moments and zeroed gradients.</summary>
    public static FlatParameters Bind(IReadOnlyList<Parameter> parameters, OrderedDict<nint, OptimizerState> stateOf)
    {
        var flat = new FlatParameters(parameters, 2);
        flat.Bind((p, i) => Moment(stateOf[p.Handle], i), createGrads: true);
        return flat;
    }

    /// <summary>Re-points the moments at their flat slices (copying in any that a load replaced).</summary>
    public static void Rebind(FlatParameters flat, OrderedDict<nint, OptimizerState> stateOf) =>
        flat.Bind((p, i) => Moment(stateOf[p.Handle], i), replace: (p, i, t) => SetMoment(stateOf[p.Handle], i, t));

    /// <summary>One Adam/AdamW step over the flat buffers, fused where <paramref name="fused"/> and the kernels cover
    /// them; <see cref="FlatPath.None"/> (nothing changed) when the flat path does not apply.</summary>
    public static FlatPath Step(FlatParameters flat, IList<ParamGroup> groups,
        OrderedDict<nint, OptimizerState> stateOf, bool decoupled, bool fused)
    {
        if (groups.Count != 1) return FlatPath.None;
        double lr, beta1, beta2, eps, wd;
        switch (groups[0].Options)
        {
            case Adam.Options o when o.amsgrad != true && o.maximize != true:
                (lr, beta1, beta2, eps, wd) = (o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value); break;
            case AdamW.Options o when o.amsgrad != true && o.maximize != true:
                (lr, beta1, beta2, eps, wd) = (o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value); break;
            default: return FlatPath.None;
        }
        var parameters = groups[0].Parameters.ToList();
        var steps = parameters.Select(p => StepOf(stateOf[p.Handle])).Distinct().ToList();
        if (steps.Count != 1) return FlatPath.None;
        if (!flat.Bind((p, i) => Moment(stateOf[p.Handle], i))) return FlatPath.None;
        foreach (var p in parameters) Advance(stateOf[p.Handle]);
        long step = steps[0] + 1;
        if (fused && FusedOptimizerKernels.Covers(flat.Weights, needsSqrt: true))
        {
            FusedOptimizerKernels.Adam(flat.Weights, flat.Grads, flat.State(0), flat.State(1),
                new FusedOptimizerKernels.AdamStep(lr, beta1, beta2, eps, wd, decoupled, step));
            return FlatPath.Fused;
        }

        double biasCorrection1 = 1.0 - Math.Pow(beta1, step);
        double biasCorrection2 = 1.0 - Math.Pow(beta2, step);
        using var _ = no_grad();
        foreach (var (start, length) in flat.Chunks())
        {
            using var scope = NewDisposeScope();
            Tensor w = flat.Weights.narrow(0, start, length), g = flat.Grads.narrow(0, start, length);
            Tensor m = flat.State(0).narrow(0, start, length), v = flat.State(1).narrow(0, start, length);
            if (decoupled && 1.0 - lr * wd != 1.0) w.mul_(1.0 - lr * wd);
            if (!decoupled && wd != 0.0) g = g.add(w, wd);
            m.mul_(beta1).add_(g, 1.0 - beta1);
            v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
            var denom = (v.sqrt() / Math.Sqrt(biasCorrection2)).add_(eps);
            w.addcdiv_(m, denom, -(lr / biasCorrection1));
        }
        return FlatPath.Ops;
    }

    static long StepOf(OptimizerState s) => s switch { Adam.State a => a.step, AdamW.State a => a.step, _ => -1 };

    static void Advance(OptimizerState s)
    {
        if (s is Adam.State a) a.step++;
        else if (s is AdamW.State b) b.step++;
    }

    static void SetMoment(OptimizerState s, int i, Tensor t)
    {
        switch (s)
        {
            case Adam.State a when i == 0: a.exp_avg = t; break;
            case Adam.State a: a.exp_avg_sq = t; break;
            case AdamW.State a when i == 0: a.exp_avg = t; break;
            case AdamW.State a: a.exp_avg_sq = t; break;
        }
    }

    static Tensor? Moment(OptimizerState s, int i) => s switch
    {
        Adam.State a => i == 0 ? a.exp_avg : a.exp_avg_sq,
        AdamW.State a => i == 0 ? a.exp_avg : a.exp_avg_sq,
        _ => null,
    };
}

/// <summary><see cref="SGD"/> (momentum, dampening, Nesterov, L2 weight decay), updated over flat buffers.</summary>
sealed class FlatSgd : SGD, IFlatStep
{
    readonly FlatParameters _flat;
    readonly bool _fused;
    public bool LastStepFlat { get; private set; }
    public bool LastStepFused { get; private set; }

    /// <param name="fused">Step in one pass where <see cref="FusedOptimizerKernels"/> covers the buffers; false: libtorch's operations over them.</param>
    public FlatSgd(IReadOnlyList<Parameter> parameters, double lr, double momentum, double weightDecay, bool nesterov, bool fused)
        : base(parameters, lr, momentum, 0, weightDecay, nesterov)
    {
        (_flat, _fused) = (new FlatParameters(parameters, 1), fused);
        _flat.Bind((p, _) => ((State)_state[p.Handle]).momentum_buffer, createGrads: true);
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        var path = closure is null ? FlatStep() : FlatPath.None;
        (LastStepFlat, LastStepFused) = (path != FlatPath.None, path == FlatPath.Fused);
        return path != FlatPath.None ? null! : base.step(closure);
    }

    public override void zero_grad() { if (!_flat.ZeroGrads()) base.zero_grad(); }

    public void AdoptLoadedState()
    {
        // Momentum buffers all present or all absent, as the flat step requires; a mix stays for the per-tensor step.
        var states = _parameter_groups.SelectMany(g => g.Parameters).Select(p => (State)_state[p.Handle]).ToList();
        if (states.All(s => s.momentum_buffer is not null) || states.All(s => s.momentum_buffer is null))
            _flat.Bind((p, _) => ((State)_state[p.Handle]).momentum_buffer, replace: (p, _, t) => ((State)_state[p.Handle]).momentum_buffer = t);
    }

    FlatPath FlatStep()
    {
        if (_parameter_groups.Count != 1 || _parameter_groups[0].Options is not Options o || o.maximize == true) return FlatPath.None;
        double lr = o.LearningRate!.Value, momentum = o.momentum!.Value, dampening = o.dampening!.Value, wd = o.weight_decay!.Value;
        bool nesterov = o.nesterov!.Value;
        var states = _parameter_groups[0].Parameters.Select(p => (State)_state[p.Handle]).ToList();
        int buffers = states.Count(s => s.momentum_buffer is not null);
        if (buffers != 0 && buffers != states.Count) return FlatPath.None;
        if (!_flat.Bind((p, _) => ((State)_state[p.Handle]).momentum_buffer)) return FlatPath.None;

        using var _ = no_grad();
        if (momentum != 0.0 && buffers == 0)
            _flat.AdoptState(0, empty_like(_flat.Weights).DetachFromDisposeScope(), (p, t) => ((State)_state[p.Handle]).momentum_buffer = t);
        if (_fused && FusedOptimizerKernels.Covers(_flat.Weights, needsSqrt: false))
        {
            FusedOptimizerKernels.Sgd(_flat.Weights, _flat.Grads, momentum != 0.0 ? _flat.State(0) : null,
                new FusedOptimizerKernels.SgdStep(lr, momentum, dampening, wd, nesterov, FirstMomentumStep: buffers == 0));
            return FlatPath.Fused;
        }
        foreach (var (start, length) in _flat.Chunks())
        {
            using var scope = NewDisposeScope();
            Tensor w = _flat.Weights.narrow(0, start, length), g = _flat.Grads.narrow(0, start, length);
            if (wd != 0.0) g = g.add(w, wd);
            if (momentum != 0.0)
            {
                var buf = _flat.State(0).narrow(0, start, length);
                if (buffers == 0) buf.copy_(g); // the first step's buffer is a copy of the gradient (torch.clone(d_p))
                else buf.mul_(momentum).add_(g, 1.0 - dampening);
                g = nesterov ? g.add(buf, momentum) : buf;
            }
            w.add_(g, -lr);
        }
        return FlatPath.Ops;
    }

    protected override void Dispose(bool disposing) { base.Dispose(disposing); if (disposing) _flat.Dispose(); }
}
