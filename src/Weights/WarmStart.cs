using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>What <see cref="WarmStart.Load"/> did.</summary>
/// <param name="Copied">Model keys copied from the file (same name and shape).</param>
/// <param name="Fresh">Model keys the file has not (or not in this shape): they keep their fresh initialisation.</param>
/// <param name="Unused">File keys the model has not.</param>
/// <param name="Converted">Copied keys whose floating-point dtype differed from the model's, with both (<c>conv1.weight float16 → float32</c>).</param>
public sealed record WarmStartReport(string File, IReadOnlyList<string> Copied, IReadOnlyList<string> Fresh, IReadOnlyList<string> Unused,
    IReadOnlyList<string>? Converted = null)
{
    public override string ToString() =>
        $"init_from: {File}: {Copied.Count} tensors copied; kept fresh: {(Fresh.Count == 0 ? "none" : string.Join(", ", Fresh))}" +
        (Unused.Count == 0 ? "" : $"; not used from the file: {string.Join(", ", Unused)}") +
        (Converted is null or { Count: 0 } ? "" : $"; converted to the model's dtype: {string.Join(", ", Converted)}");
}

/// <summary>
/// <c>model.init_from</c>: a warm start from any state_dict file, unlike <c>pretrained</c> (ImageNet weights, checked
/// strictly): every tensor whose name and shape match is copied, everything else keeps its fresh initialisation,
/// and the report lists both. A file that shares no tensor with the model is refused.
/// </summary>
/// <remarks>
/// Copying follows <see cref="StateDictChecks.CopyProblem"/>: as PyTorch's <c>load_state_dict</c> does, a float16,
/// bfloat16 or float64 tensor is converted to the model's floating-point dtype (listed in the report's
/// <see cref="WarmStartReport.Converted"/>); unlike it, an integer or bool tensor for a weight, and NaN or infinite
/// values, are refused naming the key, before anything is copied.
/// </remarks>
public static class WarmStart
{
    /// <param name="path">A state_dict file, or a run folder (its best.pt, else last.pt: <see cref="RunWeights.Resolve"/>).</param>
    public static WarmStartReport Load(ResNet model, string path)
    {
        path = RunWeights.Resolve(path);
        var sd = WeightsFile.ReadStateDict(path);
        try
        {
            var copied = new List<string>();
            var fresh = new List<string>();
            var converted = new List<string>();
            var targets = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(model.named_buffers()).ToList();
            var matching = new List<(string Key, Tensor Target, Tensor Source)>();
            foreach (var (key, target) in targets)
            {
                if (sd.TryGetValue(key, out var t) && t.shape.SequenceEqual(target.shape))
                {
                    if (StateDictChecks.CopyProblem(key, t, target) is string problem) throw new WeightsFileException(path, $"{problem}; nothing was copied");
                    matching.Add((key, target, t));
                }
                else fresh.Add(key);
            }
            if (matching.Count == 0)
                throw new WeightsFileException(path, $"shares no tensor (name and shape) with {model.Spec.Name}(in_channels={model.InChannels}, num_classes={model.NumClasses}); nothing to warm-start from");
            using (no_grad())
                foreach (var (key, target, source) in matching)
                {
                    if (source.dtype != target.dtype) converted.Add($"{key} {StateDictChecks.DTypeName(source)} → {StateDictChecks.DTypeName(target)}");
                    target.copy_(source);
                    copied.Add(key);
                }
            var names = targets.Select(t => t.Item1).ToHashSet();
            return new WarmStartReport(path, copied, fresh, sd.Keys.Where(k => !names.Contains(k)).ToList(), converted);
        }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }
}
