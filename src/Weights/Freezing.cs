using ResnetMnist.Model;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Weights;

/// <summary>
/// <c>model.freeze</c> and <c>model.bn_eval</c>: frozen top-level modules get <c>requires_grad = false</c> once
/// (<see cref="Apply"/>), and their BatchNorm layers are put back in eval mode after every <c>model.train()</c>
/// (<see cref="KeepFrozenBatchNormInEval"/>), so their running statistics stay as loaded.
/// </summary>
public static class Freezing
{
    /// <summary>Top-level names that can be frozen (the modules with parameters).</summary>
    public static IReadOnlyList<string> Names { get; } = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"];

    /// <summary>Throws <see cref="ConfigException"/> listing the allowed names if any name is unknown.</summary>
    public static void Validate(IEnumerable<string> names)
    {
        var bad = names.Where(n => !Names.Contains(n)).ToList();
        if (bad.Count > 0)
            throw new ConfigException($"model.freeze: unknown module name(s) {string.Join(", ", bad)}; allowed: {string.Join(", ", Names)}");
    }

    /// <summary>Sets <c>requires_grad = false</c> on every parameter of the named top-level modules. Call once, before building the optimizer.</summary>
    public static void Apply(ResNet model, IEnumerable<string> names)
    {
        var set = names.ToList();
        Validate(set);
        foreach (var (name, child) in model.named_children())
            if (set.Contains(name))
                foreach (var p in child.parameters()) p.requires_grad = false;
    }

    /// <summary>
    /// Puts the BatchNorm layers of the named modules (all of them when <paramref name="allBatchNorm"/>, i.e.
    /// <c>bn_eval: true</c>) in eval mode. Call after every <c>model.train()</c>.
    /// </summary>
    public static void KeepFrozenBatchNormInEval(ResNet model, IEnumerable<string> names, bool allBatchNorm = false)
    {
        var set = names.ToList();
        Validate(set);
        foreach (var (name, child) in model.named_children())
        {
            if (!allBatchNorm && !set.Contains(name)) continue;
            foreach (var m in new[] { child }.Concat(child.modules()))
                if (m is BatchNorm bn) bn.eval();
        }
    }

    /// <summary>Names of the parameters that will train (requires_grad), in model order.</summary>
    public static IReadOnlyList<string> TrainableParameterNames(Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
}
