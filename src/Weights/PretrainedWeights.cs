using System.Security.Cryptography;
using ResnetMnist.Data;
using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>What <see cref="PretrainedWeights.Load(ResNet, string?, Conv1Init, IProgress{ValueTuple{long, long?}}?)"/> did.</summary>
/// <param name="Source">The <c>model.pretrained</c> value as written.</param>
/// <param name="File">The file read (null for <c>none</c>).</param>
/// <param name="Loaded">Keys copied from the file into the model.</param>
/// <param name="KeptFresh">Model keys left at their fresh initialisation (replaced conv1/fc).</param>
/// <param name="Conv1">What happened to conv1.weight.</param>
public sealed record LoadReport(string Source, string? File, IReadOnlyList<string> Loaded, IReadOnlyList<string> KeptFresh, string Conv1)
{
    public override string ToString() => File is null
        ? $"pretrained: {Source} (fresh initialisation)"
        : $"pretrained: {Source} ({File}): {Loaded.Count} tensors loaded; conv1: {Conv1}; kept fresh: {(KeptFresh.Count == 0 ? "none" : string.Join(", ", KeptFresh))}";
}

/// <summary>
/// The one place that turns a <c>model.pretrained</c> value (<see cref="PretrainedChoice"/>) into weights in a
/// <see cref="ResNet"/>: none, named weights of the architecture (a torch.hub file, downloaded once; <c>mlnet</c>,
/// converted once from the ML.NET ImageNet ONNX model, offline) or a path to a <c>.pth</c> / <c>.safetensors</c>
/// state_dict in torchvision's layout.
/// </summary>
/// <remarks>
/// Tensors are copied (under <c>no_grad</c>, converting dtype) into the model's own parameters and buffers, so the
/// parameters keep <c>requires_grad == true</c>. Loading is strict: missing keys, unexpected keys and wrong shapes are
/// reported together in one <see cref="WeightsFileException"/>. Expected differences: <c>conv1.weight</c> when the model
/// has other than 3 input channels (see <see cref="Conv1Init"/>), <c>fc.*</c> when it has other than 1000 classes
/// (left at the fresh init, like the original script's replacement <c>Linear</c>).
/// </remarks>
public static class PretrainedWeights
{
    /// <summary>torch.hub's checkpoint folder: <c>$TORCH_HOME/hub/checkpoints</c>, default <c>~/.cache/torch/hub/checkpoints</c>.</summary>
    public static string TorchHubCheckpointDir()
    {
        var torchHome = Environment.GetEnvironmentVariable("TORCH_HOME");
        if (string.IsNullOrEmpty(torchHome))
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var cache = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
            torchHome = Path.Combine(cache, "torch");
        }
        return Path.Combine(torchHome, "hub", "checkpoints");
    }

    /// <summary>Loads <paramref name="source"/> into <paramref name="model"/> (nothing for none).</summary>
    /// <param name="model">A freshly built ResNet.</param>
    /// <param name="source">What <c>model.pretrained</c> resolved to, for the model's architecture.</param>
    /// <param name="init">What conv1 becomes when the model's channels are not 3.</param>
    /// <param name="progress">Download progress (bytes done, total if known) for torch.hub weights.</param>
    public static LoadReport Load(ResNet model, PretrainedChoice source, Conv1Init init = Conv1Init.Random, IProgress<(long done, long? total)>? progress = null)
    {
        var path = ResolvePath(source, progress);
        if (path is null) return new LoadReport(source.Text, null, [], [], "fresh");
        var sd = WeightsFile.ReadStateDict(path);
        try { return LoadStateDict(model, sd, init, path, source.Text); }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }

    /// <summary>Loads a <c>model.pretrained</c> text (a weights name of the model's architecture or a file path; see
    /// <see cref="PretrainedChoice.Parse"/>) into <paramref name="model"/>.</summary>
    public static LoadReport Load(ResNet model, string source, Conv1Init init = Conv1Init.Random, IProgress<(long done, long? total)>? progress = null) =>
        Load(model, PretrainedChoice.Parse(source, model.Spec, Path.GetFullPath), init, progress);

    /// <summary>The file a choice stands for (downloading or converting it first when needed); null for none.</summary>
    public static string? ResolvePath(PretrainedChoice source, IProgress<(long done, long? total)>? progress = null) => source switch
    {
        { File: string file } => file,
        { Weights: { IsMlnet: true } } => MlnetImporter.EnsureConverted(),
        { Weights: WeightsSpec w } => EnsureTorchvisionFile(TorchHubCheckpointDir(), w, progress),
        _ => null,
    };

    /// <summary>
    /// What to do without network for <paramref name="weights"/>, from the registry: the weights of the same
    /// architecture that need no download (<c>mlnet</c> for resnet18), else a weights file or none.
    /// </summary>
    static string OfflineAdvice(WeightsSpec weights)
    {
        var arch = ArchSpecs.All.First(a => a.Weights.Contains(weights));
        var offline = arch.Weights.Where(w => w.IsMlnet).Select(w => $"`pretrained: {w.Name}`").ToList();
        return offline.Count > 0 ? $"or use {string.Join(" or ", offline)} ({arch.Name} weights that work offline)"
            : $"or set model.pretrained to the path of a {weights.FileName} copied from elsewhere, or to none ({arch.Name} has no weights that work offline)";
    }

    /// <summary>
    /// Returns <c>dir/</c><paramref name="weights"/>' file name (<c>resnet18-f37072fd.pth</c>), downloading it first if
    /// absent (to a temp file in <paramref name="dir"/>, checked against the sha256 prefix, then renamed into place).
    /// </summary>
    /// <param name="url">Where to download from; default: the weights' own URL.</param>
    public static string EnsureTorchvisionFile(string dir, WeightsSpec weights, IProgress<(long done, long? total)>? progress = null, string? url = null)
    {
        url ??= weights.Url ?? throw new ArgumentException($"{weights.Name}: converted offline, not downloaded", nameof(weights));
        var target = Path.Combine(dir, weights.FileName);
        if (File.Exists(target)) return target;
        Directory.CreateDirectory(dir);
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
            var (accepted, hex) = HttpDownload.ToFile(http, url, target, HashAlgorithmName.SHA256,
                h => h.StartsWith(weights.Sha256Prefix, StringComparison.Ordinal), progress);
            if (!accepted)
                throw new WeightsFileException(url, $"downloaded file has sha256 {hex}, expected one starting with {weights.Sha256Prefix}; nothing was saved");
            return target;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new WeightsFileException(target,
                $"not cached and the download from {url} failed ({e.Message}). Offline, copy {weights.FileName} into {dir} " +
                $"(or set TORCH_HOME), {OfflineAdvice(weights)}", e);
        }
    }

    /// <summary>Checks a state_dict against the model (see the class remarks) and copies it in.</summary>
    public static LoadReport LoadStateDict(ResNet model, IReadOnlyDictionary<string, Tensor> stateDict, Conv1Init conv1Init, string file, string? source = null)
    {
        var targets = new Dictionary<string, Tensor>();
        foreach (var (k, p) in model.named_parameters()) targets[k] = p;
        foreach (var (k, b) in model.named_buffers()) targets[k] = b;

        // A file whose conv1/fc already have the model's shapes (a checkpoint of this very model, e.g. a run's best.pt)
        // is loaded whole: only ImageNet-shaped layers are replaced by fresh ones.
        bool Fits(string key) => stateDict.TryGetValue(key, out var t) && t.shape.SequenceEqual(targets[key].shape);
        bool replaceConv1 = model.InChannels != 3 && !Fits("conv1.weight");
        bool replaceFc = model.NumClasses != 1000 && !(Fits("fc.weight") && Fits("fc.bias"));
        bool needConv1 = replaceConv1 && conv1Init != Conv1Init.Random;

        var problems = Compare(
            targets.Select(kv => (kv.Key, kv.Value.shape)).ToList(),
            stateDict.Select(kv => (kv.Key, kv.Value.shape)).ToList(),
            replaceConv1, needConv1, replaceFc);
        if (problems.Count > 0)
            throw new WeightsFileException(file, $"does not fit {model.Spec.Name}" +
                $"(in_channels={model.InChannels}, num_classes={model.NumClasses}):\n  " + string.Join("\n  ", problems));

        // Every tensor that will be used is a finite tensor of a kind the model takes, checked before anything is copied.
        foreach (var (key, target) in targets)
            if (stateDict.TryGetValue(key, out var given) && !(key == "conv1.weight" && replaceConv1 && !needConv1)
                && !(replaceFc && key.StartsWith("fc.", StringComparison.Ordinal))
                && StateDictChecks.CopyProblem(key, given, target) is string problem)
                throw new WeightsFileException(file, problem);

        var loaded = new List<string>();
        var fresh = new List<string>();
        string conv1 = "loaded";
        using (no_grad())
        {
            foreach (var (key, target) in targets)
            {
                if (key == "conv1.weight" && replaceConv1)
                {
                    if (conv1Init == Conv1Init.Random) { fresh.Add(key); conv1 = "random (fresh init)"; continue; }
                    using var w = Conv1FromRgb(stateDict[key], model.InChannels, conv1Init);
                    target.copy_(w);
                    loaded.Add(key);
                    conv1 = conv1Init == Conv1Init.SumRgb ? "sum-rgb" : "mean-rgb";
                    continue;
                }
                if (replaceFc && key.StartsWith("fc.", StringComparison.Ordinal)) { fresh.Add(key); continue; }
                target.copy_(stateDict[key]);
                loaded.Add(key);
            }
        }
        return new LoadReport(source ?? file, file, loaded, fresh, conv1);
    }

    /// <summary>Derives a C-channel conv1 kernel from the pretrained 64×3×7×7 one (see <see cref="Conv1Init"/>).</summary>
    public static Tensor Conv1FromRgb(Tensor rgb, int inChannels, Conv1Init how)
    {
        using var w = rgb.to_type(ScalarType.Float32);
        using var mean = w.mean([1], keepdim: true);
        return how switch
        {
            Conv1Init.SumRgb when inChannels == 1 => w.sum([1], keepdim: true),
            Conv1Init.SumRgb => (mean * (3.0 / inChannels)).repeat(1, inChannels, 1, 1),
            Conv1Init.MeanRgb => mean.repeat(1, inChannels, 1, 1),
            _ => throw new NotSupportedException("conv1 init 'random' derives nothing"),
        };
    }

    /// <summary>Strict comparison; returns one readable line per problem (empty: fits).</summary>
    internal static List<string> Compare(IReadOnlyList<(string Key, long[] Shape)> expected, IReadOnlyList<(string Key, long[] Shape)> found,
        bool replaceConv1, bool needConv1, bool replaceFc)
    {
        var have = found.ToDictionary(f => f.Key, f => f.Shape);
        var want = expected.ToDictionary(e => e.Key, e => e.Shape);
        var missing = new List<string>();
        var shapes = new List<string>();
        foreach (var (key, shape) in expected)
        {
            if (replaceFc && key.StartsWith("fc.", StringComparison.Ordinal)) continue;
            long[] wanted = shape;
            if (key == "conv1.weight" && replaceConv1)
            {
                if (!needConv1) continue;
                wanted = [shape[0], 3, shape[2], shape[3]];
            }
            if (!have.TryGetValue(key, out var got)) missing.Add($"missing: {key} (expected {ArchSpec.Shape(wanted)})");
            else if (!got.SequenceEqual(wanted))
                shapes.Add($"wrong shape: {key}: expected {ArchSpec.Shape(wanted)}, found {ArchSpec.Shape(got)}");
        }
        var unexpected = found.Where(f => !want.ContainsKey(f.Key))
            .Select(f => $"unexpected: {f.Key} {ArchSpec.Shape(f.Shape)}").ToList();
        return [.. missing, .. unexpected, .. shapes];
    }
}
