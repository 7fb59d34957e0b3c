using System.Reflection;
using System.Text.Json;

namespace ResnetMnist.Model;

/// <summary>The preprocessing pretrained weights expect (torchvision's <c>ImageClassification</c> transform).</summary>
/// <param name="ResizeSize">Shorter side after resizing, in pixels.</param>
/// <param name="CropSize">Centre crop, in pixels.</param>
/// <param name="Mean">Per-channel mean subtracted after <c>ToTensor</c>'s /255.</param>
/// <param name="Std">Per-channel divisor.</param>
public sealed record Preprocessing(int ResizeSize, int CropSize, double[] Mean, double[] Std);

/// <summary>
/// Pretrained weights an architecture can load, like a member of torchvision's <c>ResNet50_Weights</c>: a torch.hub file
/// (<see cref="Url"/>), or ML.NET's ImageNet ResNet-18 converted offline (<see cref="Url"/> null, name <c>mlnet</c>).
/// </summary>
/// <param name="Name">torchvision's enum member name (<c>IMAGENET1K_V1</c>), or <c>mlnet</c>.</param>
/// <param name="Url">Where torch.hub downloads it from; null for weights converted offline.</param>
/// <param name="NumParams">Parameters of the ImageNet-shaped model (torchvision's <c>meta["num_params"]</c>).</param>
/// <param name="Transforms">The preprocessing its accuracy was measured with.</param>
public sealed record WeightsSpec(string Name, string? Url, long NumParams, Preprocessing Transforms)
{
    /// <summary>Outputs of its <c>fc</c> (ImageNet's classes).</summary>
    public int NumClasses => 1000;

    /// <summary>True for the weights converted offline from ML.NET's model (see <c>MlnetImporter</c>).</summary>
    public bool IsMlnet => Url is null;

    /// <summary>The file name torch.hub caches it under (<c>resnet18-f37072fd.pth</c>); <c>mlnet</c> for ML.NET's.</summary>
    public string FileName => Url is null ? Name : Url[(Url.LastIndexOf('/') + 1)..];

    /// <summary>The start of the file's sha256, as torch.hub reads it from the file name (<c>-([a-f0-9]*)\.</c>).</summary>
    public string Sha256Prefix => System.Text.RegularExpressions.Regex.Match(FileName, "-([a-f0-9]*)\\.").Groups[1].Value;

    public override string ToString() => Name;
}

/// <summary>
/// A ResNet architecture as <c>torchvision.models.resnet</c> defines it: block type, blocks per stage, <c>groups</c> and
/// <c>width_per_group</c> (stage widths are always 64, 128, 256, 512), plus the weights it can load. The model, its
/// state_dict layout and the weights' checks all come from this record. One entry of <c>reference/archs.json</c>.
/// </summary>
/// <param name="Groups">Groups of each Bottleneck's 3×3 convolution (ResNeXt: 32 or 64; else 1).</param>
/// <param name="WidthPerGroup">torchvision's <c>width_per_group</c> (<c>base_width</c>; 64 unless ResNeXt or wide).</param>
public sealed record ArchSpec(string Name, BlockType Block, int[] Layers, int Groups, int WidthPerGroup, IReadOnlyList<WeightsSpec> Weights)
{
    /// <summary>Output channels of each stage's blocks, before expansion.</summary>
    public static readonly int[] Widths = [64, 128, 256, 512];

    /// <summary>Inputs of <c>fc</c>: 512 × the block's expansion.</summary>
    public int Features => Widths[^1] * Block.Expansion;

    /// <summary>The default pretrained weights (<c>model.pretrained: torchvision</c>): ImageNet V1, as the reference loads.</summary>
    public WeightsSpec DefaultWeights => Weights[0];

    /// <summary>The weights named <paramref name="name"/> (case-insensitive), or null.</summary>
    public WeightsSpec? FindWeights(string name) => Weights.FirstOrDefault(w => string.Equals(w.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>True for running statistics and counters (buffers), false for trainable parameters.</summary>
    public static bool IsBuffer(string key) =>
        key.EndsWith(".running_mean", StringComparison.Ordinal) || key.EndsWith(".running_var", StringComparison.Ordinal)
        || key.EndsWith(".num_batches_tracked", StringComparison.Ordinal);

    /// <summary>The state_dict's keys in torchvision's order with their shapes, computed without building a model.</summary>
    public List<(string Key, long[] Shape)> StateDictLayout(int inChannels = 3, int numClasses = 1000)
    {
        var layout = new LayoutBuilder();
        layout.Conv("conv1", inChannels, 64, 7);
        layout.Bn("bn1", 64);
        long inplanes = 64;
        for (int s = 0; s < 4; s++)
        {
            long planes = Widths[s], outC = planes * Block.Expansion;
            int stride = s == 0 ? 1 : 2;
            for (int b = 0; b < Layers[s]; b++)
            {
                var p = $"layer{s + 1}.{b}";
                long cin = b == 0 ? inplanes : outC;
                Block.Layout(layout, p, cin, planes, new BlockShape(Groups, WidthPerGroup));
                if (b == 0 && (stride != 1 || inplanes != outC))
                {
                    layout.Conv($"{p}.downsample.0", cin, outC, 1);
                    layout.Bn($"{p}.downsample.1", outC);
                }
            }
            inplanes = outC;
        }
        layout.Tensor("fc.weight", numClasses, Features);
        layout.Tensor("fc.bias", numClasses);
        return layout.Entries;
    }

    /// <summary>A shape as <c>[64, 3, 7, 7]</c>.</summary>
    public static string Shape(long[] s) => "[" + string.Join(", ", s) + "]";

    public override string ToString() => Name;
}

/// <summary>
/// The architectures this library builds (the <c>model.arch</c> key), like <c>torchvision.models.list_models()</c>:
/// read from <c>reference/archs.json</c> (embedded), the one list the reference program reads too.
/// </summary>
public static class ArchSpecs
{
    /// <summary>Every architecture, in the file's order.</summary>
    public static readonly IReadOnlyList<ArchSpec> All = Load();

    /// <summary>Names of <see cref="All"/>: the allowed <c>model.arch</c> values.</summary>
    public static IReadOnlyList<string> Names => All.Select(a => a.Name).ToList();

    public static ArchSpec Resnet18 => Get("resnet18");
    public static ArchSpec Resnet34 => Get("resnet34");
    public static ArchSpec Resnet50 => Get("resnet50");

    /// <summary>The spec named <paramref name="name"/>, or null.</summary>
    public static ArchSpec? Find(string? name) => All.FirstOrDefault(a => a.Name == name);

    /// <summary>The spec named <paramref name="name"/> (a validated value).</summary>
    public static ArchSpec Get(string name) => Find(name)
        ?? throw new ConfigException($"model.arch: '{name}' is not allowed; allowed: {string.Join(", ", Names)}");

    /// <summary>The architectures whose weights named <paramref name="weights"/> exist (for advice).</summary>
    public static IEnumerable<ArchSpec> WithWeights(string weights) => All.Where(a => a.FindWeights(weights) is not null);

    static List<ArchSpec> Load()
    {
        using var stream = typeof(ArchSpecs).Assembly.GetManifestResourceStream("archs.json")
            ?? throw new InvalidOperationException("archs.json is not embedded in the library");
        using var doc = JsonDocument.Parse(stream);
        var list = new List<ArchSpec>();
        foreach (var a in doc.RootElement.GetProperty("archs").EnumerateArray())
        {
            var blockName = a.GetProperty("block").GetString();
            var block = BlockType.All.FirstOrDefault(b => b.Name == blockName)
                ?? throw new InvalidOperationException($"archs.json: block '{blockName}' is not one of {string.Join(", ", BlockType.All.Select(b => b.Name))}");
            var weights = a.GetProperty("weights").EnumerateArray().Select(w => new WeightsSpec(
                w.GetProperty("name").GetString()!,
                w.TryGetProperty("url", out var url) ? url.GetString() : null,
                w.GetProperty("num_params").GetInt64(),
                new Preprocessing(w.GetProperty("resize_size").GetInt32(), w.GetProperty("crop_size").GetInt32(),
                    Doubles(w.GetProperty("mean")), Doubles(w.GetProperty("std"))))).ToList();
            list.Add(new ArchSpec(a.GetProperty("name").GetString()!, block, a.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                a.GetProperty("groups").GetInt32(), a.GetProperty("width_per_group").GetInt32(), weights));
        }
        return list;
    }

    static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
}
