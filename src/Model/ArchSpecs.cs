namespace ResnetMnist.Model;

/// <summary>The preprocessing pretrained weights expect (torchvision's <c>ImageClassification</c> transform).</summary>
/// <param name="ResizeSize">Shorter side after resizing, in pixels.</param>
/// <param name="CropSize">Centre crop, in pixels.</param>
/// <param name="Mean">Per-channel mean subtracted after <c>ToTensor</c>'s /255.</param>
/// <param name="Std">Per-channel divisor.</param>
public sealed record Preprocessing(int ResizeSize, int CropSize, double[] Mean, double[] Std)
{
    /// <summary>torchvision's ImageNet preprocessing (all its IMAGENET1K_V1 ResNet weights).</summary>
    public static readonly Preprocessing ImageNet = new(256, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

    /// <summary>torchvision's IMAGENET1K_V2 preprocessing (resize 232, crop 224, same mean and std).</summary>
    public static readonly Preprocessing ImageNetV2 = new(232, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
}

/// <summary>A weights file torchvision publishes for an architecture, like <c>ResNet18_Weights.IMAGENET1K_V1</c>.</summary>
/// <param name="Name">torchvision's enum member name.</param>
/// <param name="Url">Where torch.hub downloads it from.</param>
/// <param name="Sha256Prefix">The start of the file's sha256, which torch.hub puts in the file name.</param>
/// <param name="NumClasses">Outputs of its <c>fc</c>.</param>
/// <param name="Transforms">The preprocessing its accuracy was measured with.</param>
public sealed record WeightsSpec(string Name, string Url, string Sha256Prefix, int NumClasses, Preprocessing Transforms)
{
    /// <summary>The file name torch.hub caches it under (<c>resnet18-f37072fd.pth</c>).</summary>
    public string FileName => Url[(Url.LastIndexOf('/') + 1)..];
}

/// <summary>
/// A ResNet architecture as <c>torchvision.models.resnet</c> defines it: block type and blocks per stage (stage widths
/// are always 64, 128, 256, 512), plus the weights it can load. The model, its state_dict layout and the weights'
/// checks all come from this record.
/// </summary>
public sealed record ArchSpec(string Name, BlockType Block, int[] Layers, IReadOnlyList<WeightsSpec> Weights)
{
    /// <summary>Output channels of each stage's blocks, before expansion.</summary>
    public static readonly int[] Widths = [64, 128, 256, 512];

    /// <summary>Channels a block outputs per unit of width (the block type's expansion).</summary>
    public int Expansion => Block.Expansion;

    /// <summary>Inputs of <c>fc</c>: 512 × expansion.</summary>
    public int Features => Widths[^1] * Expansion;

    /// <summary>The default pretrained weights (torchvision's <c>DEFAULT</c> for ImageNet V1).</summary>
    public WeightsSpec DefaultWeights => Weights[0];

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
            long planes = Widths[s], outC = planes * Expansion;
            int stride = s == 0 ? 1 : 2;
            for (int b = 0; b < Layers[s]; b++)
            {
                var p = $"layer{s + 1}.{b}";
                long cin = b == 0 ? inplanes : outC;
                Block.Layout(layout, p, cin, planes);
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
}

/// <summary>The architectures this library builds (the <c>model.arch</c> key), like <c>torchvision.models.list_models()</c>.</summary>
public static class ArchSpecs
{
    public static readonly ArchSpec Resnet18 = new("resnet18", BasicBlock.Type, [2, 2, 2, 2],
        [new("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd", 1000, Preprocessing.ImageNet)]);

    public static readonly ArchSpec Resnet34 = new("resnet34", BasicBlock.Type, [3, 4, 6, 3],
        [new("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet34-b627a593.pth", "b627a593", 1000, Preprocessing.ImageNet)]);

    public static readonly ArchSpec Resnet50 = new("resnet50", Bottleneck.Type, [3, 4, 6, 3],
        [new("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61", 1000, Preprocessing.ImageNet),
         new("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth", "11ad3fa6", 1000, Preprocessing.ImageNetV2)]);

    public static readonly IReadOnlyList<ArchSpec> All = [Resnet18, Resnet34, Resnet50];

    /// <summary>Names of <see cref="All"/>: the allowed <c>model.arch</c> values.</summary>
    public static IReadOnlyList<string> Names => All.Select(a => a.Name).ToList();

    /// <summary>The spec named <paramref name="name"/> (a validated config value).</summary>
    public static ArchSpec Get(string name) => All.FirstOrDefault(a => a.Name == name)
        ?? throw new Config.ConfigException($"model.arch: '{name}' is not allowed; allowed: {string.Join(", ", Names)}");
}
