using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>What <see cref="WarmStart.Load"/> did.</summary>
/// <param name="Copied">Model keys copied from the file (same name and shape).</param>
/// <param name="Fresh">Model keys the file has not (or not in this shape): they keep their fresh initialisation.</param>
/// <param name="Unused">File keys the model has not.</param>
public sealed record WarmStartReport(string File, IReadOnlyList<string> Copied, IReadOnlyList<string> Fresh, IReadOnlyList<string> Unused)
{
    public override string ToString() =>
        $"init_from: {File}: {Copied.Count} tensors copied; kept fresh: {(Fresh.Count == 0 ? "none" : string.Join(", ", Fresh))}" +
        (Unused.Count == 0 ? "" : $"; not used from the file: {string.Join(", ", Unused)}");
}

/// <summary>
/// <c>model.init_from</c>: a warm start from any state_dict file, unlike <c>pretrained</c> (ImageNet weights, checked
/// strictly): every tensor whose name and shape match is copied, everything else keeps its fresh initialisation,
/// and the report lists both. A file that shares no tensor with the model is refused.
/// </summary>
public static class WarmStart
{
    public static WarmStartReport Load(ResNet model, string path)
    {
        var sd = WeightsFile.ReadStateDict(path);
        try
        {
            var copied = new List<string>();
            var fresh = new List<string>();
            var targets = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(model.named_buffers()).ToList();
            using (no_grad())
                foreach (var (key, target) in targets)
                {
                    if (sd.TryGetValue(key, out var t) && t.shape.SequenceEqual(target.shape)) { target.copy_(t); copied.Add(key); }
                    else fresh.Add(key);
                }
            if (copied.Count == 0)
                throw new WeightsFileException(path, $"shares no tensor (name and shape) with {model.Spec.Name}(in_channels={model.InChannels}, num_classes={model.NumClasses}); nothing to warm-start from");
            var names = targets.Select(t => t.Item1).ToHashSet();
            return new WarmStartReport(path, copied, fresh, sd.Keys.Where(k => !names.Contains(k)).ToList());
        }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }
}
