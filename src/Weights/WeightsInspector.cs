using ResnetMnist.Model;
using System.Text;

namespace ResnetMnist.Weights;

/// <summary>One tensor of a weights file.</summary>
public sealed record TensorInfo(string Key, long[] Shape, string DType)
{
    /// <summary>Number of elements.</summary>
    public long Numel => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>What a weights file holds and whether it fits resnet18 with the given input channels and classes.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">Its format.</param>
/// <param name="Tensors">Its tensors, in file order.</param>
/// <param name="ParameterCount">Elements of trainable tensors (everything but running_mean/var and num_batches_tracked).</param>
/// <param name="InChannels">Input channels checked against.</param>
/// <param name="NumClasses">Classes checked against.</param>
/// <param name="Problems">Missing/unexpected keys and wrong shapes; empty when it fits.</param>
/// <param name="Notes">Keys that will keep their fresh initialisation or be derived (conv1, fc).</param>
public sealed record WeightsReport(string Path, WeightsFormat Format, IReadOnlyList<TensorInfo> Tensors, long ParameterCount,
    string Arch, int InChannels, int NumClasses, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    /// <summary>True when <see cref="PretrainedWeights"/> would load it into Arch(InChannels, NumClasses) with conv1_init sum-rgb/mean-rgb.</summary>
    public bool Fits => Problems.Count == 0;

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{Path}");
        sb.AppendLine($"  format: {Format}, {Tensors.Count} tensors, {ParameterCount:N0} parameters");
        int w = Tensors.Count == 0 ? 0 : Tensors.Max(t => t.Key.Length);
        foreach (var t in Tensors)
            sb.AppendLine($"  {t.Key.PadRight(w)}  {ArchSpec.Shape(t.Shape),-20} {t.DType}");
        sb.AppendLine($"  fits {Arch}(in_channels={InChannels}, num_classes={NumClasses}): {(Fits ? "yes" : "no")}");
        foreach (var n in Notes) sb.AppendLine($"    note: {n}");
        foreach (var p in Problems) sb.AppendLine($"    {p}");
        return sb.ToString().TrimEnd();
    }
}

/// <summary>Reads a <c>.pth</c> / <c>.safetensors</c> file's keys, shapes and dtypes and checks it against an architecture.</summary>
public static class WeightsInspector
{
    /// <summary>Inspects <paramref name="path"/>; bad files throw <see cref="WeightsFileException"/> as when loading.</summary>
    public static WeightsReport Inspect(string path, int inChannels = 3, int numClasses = 1000, ArchSpec? arch = null)
    {
        arch ??= ArchSpecs.Resnet18;
        var format = WeightsFile.DetectFormat(path);
        var tensors = WeightsFile.ReadIndex(path).Select(e => new TensorInfo(e.Key, e.Shape, e.DType)).ToList();
        long count = tensors.Where(t => !ArchSpec.IsBuffer(t.Key)).Sum(t => t.Numel);
        bool replaceConv1 = inChannels != 3, replaceFc = numClasses != 1000;
        var problems = PretrainedWeights.Compare(arch.StateDictLayout(inChannels, numClasses),
            tensors.Select(t => (t.Key, t.Shape)).ToList(), replaceConv1, needConv1: replaceConv1, replaceFc);
        var notes = new List<string>();
        if (replaceConv1) notes.Add($"conv1.weight: derived for {inChannels} channel(s) by conv1_init sum-rgb/mean-rgb, or fresh with random");
        if (replaceFc) notes.Add($"fc.weight, fc.bias: fresh {numClasses}-class layer (the file's fc, if any, is not used)");
        return new WeightsReport(path, format, tensors, count, arch.Name, inChannels, numClasses, problems, notes);
    }
}
