using System.Security.Cryptography;
using ResnetMnist.Data;
using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>How <c>conv1</c> is initialised when the model's input channels differ from the pretrained 3 (the <c>model.conv1_init</c> key).</summary>
public enum Conv1Init
{
    /// <summary>Keep the freshly initialised conv1 (what the original script does when it replaces conv1).</summary>
    Random,
    /// <summary>Sum the pretrained 64×3×7×7 kernel over its input channels (1 channel: a grey image gives the RGB response of that grey). For C ≠ 1 channels: the channel mean scaled by 3/C, repeated C times.</summary>
    SumRgb,
    /// <summary>Mean of the pretrained kernel over its input channels, repeated for each input channel.</summary>
    MeanRgb,
}

/// <summary>What <see cref="PretrainedWeights.Load(ResNet, string?, string, IProgress{ValueTuple{long, long?}}?)"/> did.</summary>
/// <param name="Source">The <c>model.pretrained</c> value.</param>
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
/// The one place that turns a <c>model.pretrained</c> value into weights in a <see cref="ResNet"/>:
/// <c>none</c>, <c>torchvision</c> (torch.hub's file, downloaded once), <c>mlnet</c> (converted once from the ML.NET
/// ImageNet ONNX model, offline) or a path to a <c>.pth</c> / <c>.safetensors</c> state_dict in torchvision's layout.
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
    /// <summary>Named sources; any other value is a file path.</summary>
    public static readonly string[] NamedSources = ["none", "torchvision", "mlnet"];
    /// <summary>Allowed <c>conv1_init</c> values.</summary>
    public static readonly string[] Conv1InitNames = ["random", "sum-rgb", "mean-rgb"];

    /// <summary>torchvision's IMAGENET1K_V1 resnet18 weights.</summary>
    public const string TorchvisionUrl = "https://download.pytorch.org/models/resnet18-f37072fd.pth";
    /// <summary>File name torch.hub gives it; the hex is the start of its sha256.</summary>
    public const string TorchvisionFileName = "resnet18-f37072fd.pth";
    const string TorchvisionSha256Prefix = "f37072fd";

    /// <summary>Parses a <c>conv1_init</c> value.</summary>
    public static Conv1Init ParseConv1Init(string value) => value switch
    {
        "random" => Conv1Init.Random,
        "sum-rgb" => Conv1Init.SumRgb,
        "mean-rgb" => Conv1Init.MeanRgb,
        _ => throw new ArgumentException($"unknown conv1_init '{value}' (allowed: {string.Join(", ", Conv1InitNames)})", nameof(value)),
    };

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

    /// <summary>
    /// Loads <paramref name="source"/> into <paramref name="model"/> (nothing for <c>none</c> or null).
    /// </summary>
    /// <param name="model">A freshly built resnet18.</param>
    /// <param name="source"><c>none</c>, <c>torchvision</c>, <c>mlnet</c> or a file path.</param>
    /// <param name="conv1Init"><c>random</c>, <c>sum-rgb</c> or <c>mean-rgb</c>.</param>
    /// <param name="progress">Download progress (bytes done, total if known) for <c>torchvision</c>.</param>
    public static LoadReport Load(ResNet model, string? source, string conv1Init = "random", IProgress<(long done, long? total)>? progress = null)
    {
        var init = ParseConv1Init(conv1Init);
        var path = ResolvePath(source, progress);
        if (path is null) return new LoadReport(source ?? "none", null, [], [], "fresh");
        var sd = WeightsFile.ReadStateDict(path);
        try { return LoadStateDict(model, sd, init, path, source!); }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }

    /// <summary>The file a source stands for (downloading or converting it first when needed); null for <c>none</c>.</summary>
    public static string? ResolvePath(string? source, IProgress<(long done, long? total)>? progress = null) => source switch
    {
        null or "" or "none" => null,
        "torchvision" => EnsureTorchvisionFile(TorchHubCheckpointDir(), progress),
        "mlnet" => MlnetImporter.EnsureConverted(),
        _ => source,
    };

    /// <summary>
    /// Returns <c>dir/resnet18-f37072fd.pth</c>, downloading it first if absent (to a temp file in <paramref name="dir"/>,
    /// checked against the sha256 prefix, then renamed into place).
    /// </summary>
    public static string EnsureTorchvisionFile(string dir, IProgress<(long done, long? total)>? progress = null, string url = TorchvisionUrl)
    {
        var target = Path.Combine(dir, TorchvisionFileName);
        if (File.Exists(target)) return target;
        Directory.CreateDirectory(dir);
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
            var (accepted, hex) = HttpDownload.ToFile(http, url, target, HashAlgorithmName.SHA256,
                h => h.StartsWith(TorchvisionSha256Prefix, StringComparison.Ordinal), progress);
            if (!accepted)
                throw new WeightsFileException(url, $"downloaded file has sha256 {hex}, expected one starting with {TorchvisionSha256Prefix}; nothing was saved");
            return target;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new WeightsFileException(target,
                $"not cached and the download from {url} failed ({e.Message}). Offline, copy {TorchvisionFileName} into {dir} " +
                "(or set TORCH_HOME), or use `pretrained: mlnet`, which works offline", e);
        }
    }

    /// <summary>Checks a state_dict against the model (see the class remarks) and copies it in.</summary>
    public static LoadReport LoadStateDict(ResNet model, IReadOnlyDictionary<string, Tensor> stateDict, Conv1Init conv1Init, string file, string? source = null)
    {
        var targets = new Dictionary<string, Tensor>();
        foreach (var (k, p) in model.named_parameters()) targets[k] = p;
        foreach (var (k, b) in model.named_buffers()) targets[k] = b;

        bool replaceConv1 = model.InChannels != 3;
        bool replaceFc = model.NumClasses != 1000;
        bool needConv1 = replaceConv1 && conv1Init != Conv1Init.Random;

        var problems = Compare(
            targets.Select(kv => (kv.Key, kv.Value.shape)).ToList(),
            stateDict.Select(kv => (kv.Key, kv.Value.shape)).ToList(),
            replaceConv1, needConv1, replaceFc);
        if (problems.Count > 0)
            throw new WeightsFileException(file, "does not fit resnet18" +
                $"(in_channels={model.InChannels}, num_classes={model.NumClasses}):\n  " + string.Join("\n  ", problems));

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
            _ => throw new ArgumentException("conv1 init 'random' derives nothing", nameof(how)),
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
            if (!have.TryGetValue(key, out var got)) missing.Add($"missing: {key} (expected {Resnet18Layout.Shape(wanted)})");
            else if (!got.SequenceEqual(wanted))
                shapes.Add($"wrong shape: {key}: expected {Resnet18Layout.Shape(wanted)}, found {Resnet18Layout.Shape(got)}");
        }
        var unexpected = found.Where(f => !want.ContainsKey(f.Key))
            .Select(f => $"unexpected: {f.Key} {Resnet18Layout.Shape(f.Shape)}").ToList();
        return [.. missing, .. unexpected, .. shapes];
    }
}
