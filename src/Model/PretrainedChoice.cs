
namespace ResnetMnist.Model;

/// <summary>
/// A resolved <c>model.pretrained</c>: nothing, named weights of the architecture (<see cref="WeightsSpec"/>, as
/// torchvision's <c>weights=ResNet50_Weights.IMAGENET1K_V2</c>), or a state_dict file. Resolved once, when the config
/// is read, against <c>model.arch</c>.
/// </summary>
/// <param name="Weights">Named weights of the architecture, or null.</param>
/// <param name="File">A <c>.pth</c>/<c>.safetensors</c> path (absolute), or null.</param>
/// <param name="Text">The value as written back to config.yaml: <c>none</c>, <c>torchvision</c>, the weights' name, or the path.</param>
public sealed record PretrainedChoice(WeightsSpec? Weights, string? File, string Text)
{
    /// <summary>No pretrained weights (the reference's default).</summary>
    public static readonly PretrainedChoice None = new(null, null, "none");

    /// <summary>The alias of an architecture's default weights (IMAGENET1K_V1), the spelling the tool always accepted.</summary>
    public const string TorchvisionAlias = "torchvision";

    public bool IsNone => Weights is null && File is null;

    /// <summary>What <c>model.pretrained</c> may be for <paramref name="arch"/>, in words.</summary>
    public static string Allowed(ArchSpec arch) =>
        $"none, {TorchvisionAlias} (= {arch.DefaultWeights.Name}), {string.Join(", ", arch.Weights.Select(w => w.Name))}, or a path to a .pth/.safetensors file";

    /// <summary>
    /// Reads <paramref name="text"/> for <paramref name="arch"/>; <paramref name="resolvePath"/> makes a file path
    /// absolute. Throws <see cref="ConfigException"/> (the message without the key's location) naming what is allowed
    /// for this architecture, and which architectures have weights of that name.
    /// </summary>
    public static PretrainedChoice Parse(string? text, ArchSpec arch, Func<string, string> resolvePath)
    {
        if (text is null || text.Equals("none", StringComparison.OrdinalIgnoreCase) || text.Equals("false", StringComparison.OrdinalIgnoreCase)) return None;
        if (text.Equals(TorchvisionAlias, StringComparison.OrdinalIgnoreCase)) return new(arch.DefaultWeights, null, TorchvisionAlias);
        if (arch.FindWeights(text) is { } w) return new(w, null, w.Name);
        if (text.EndsWith(".pth") || text.EndsWith(".pt") || text.EndsWith(".safetensors") || text.Contains('/'))
        {
            var path = resolvePath(text);
            return new(null, path, path);
        }
        var elsewhere = ArchSpecs.WithWeights(text).Select(a => a.Name).ToList();
        if (elsewhere.Count > 0)
            throw new ConfigException($"'{text}' holds no weights for model.arch {arch.Name} (only for {string.Join(", ", elsewhere)}); allowed for {arch.Name}: {Allowed(arch)}");
        var names = new[] { "none", TorchvisionAlias }.Concat(arch.Weights.Select(x => x.Name)).ToList();
        throw new ConfigException($"'{text}' is not allowed{DidYouMean.Hint(names, text)}; allowed for {arch.Name}: {Allowed(arch)}");
    }

    public override string ToString() => Text;
}
