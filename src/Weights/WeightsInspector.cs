using ResnetMnist.Core;
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
/// <param name="Inferred">Whether the model checked against was read off the file's shapes.</param>
/// <param name="Recorded">The model the file records (<see cref="CheckpointModel.Find"/>), if any.</param>
/// <param name="RecordedIn">Where that record was found: the file's metadata or the JSON beside it.</param>
/// <param name="Backbone">True when the file is pretrained weights without <c>fc</c> (a backbone, as <c>weights
/// import-mlnet</c> writes): it fits <see cref="Arch"/> as <c>model.pretrained</c>, for any <c>model.in_channels</c> and
/// any <c>model.num_classes</c> but 1000 (<see cref="NumClasses"/> is then 0).</param>
public sealed record WeightsReport(string Path, WeightsFormat Format, IReadOnlyList<TensorInfo> Tensors, long ParameterCount,
    string Arch, int InChannels, int NumClasses, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes, bool Inferred = false,
    CheckpointModel? Recorded = null, string? RecordedIn = null, bool Backbone = false)
{
    /// <summary>True when <see cref="PretrainedWeights"/> would load it into Arch(InChannels, NumClasses) with conv1_init sum-rgb/mean-rgb.</summary>
    public bool Fits => Problems.Count == 0;

    /// <summary>
    /// The report as lines; every value read from the file (path, keys, dtypes, recorded model) is escaped
    /// (<see cref="Printable.Escape"/>), so that a key holding a newline or an escape sequence stays inside its line.
    /// </summary>
    public override string ToString()
    {
        static string E(string? s) => Printable.Escape(s);
        var sb = new StringBuilder();
        sb.AppendLine(E(Path));
        sb.AppendLine($"  format: {Format}, {Tensors.Count} tensors, {ParameterCount:N0} parameters");
        var keys = Tensors.Select(t => E(t.Key)).ToList();
        int w = keys.Count == 0 ? 0 : keys.Max(k => k.Length);
        for (int i = 0; i < Tensors.Count; i++)
            sb.AppendLine($"  {keys[i].PadRight(w)}  {ArchSpec.Shape(Tensors[i].Shape),-20} {E(Tensors[i].DType)}");
        if (Recorded is not null) sb.AppendLine($"  recorded model ({E(RecordedIn)}): {E(Recorded.Describe())}");
        var how = Inferred ? " as a checkpoint (model inferred from the file's shapes)"
            : Recorded is not null && Recorded.Arch == Arch && Recorded.InChannels == InChannels && Recorded.NumClasses == NumClasses && Notes.Count == 0
                ? " as a checkpoint (the recorded model)" : "";
        if (Backbone)
            sb.AppendLine($"  pretrained weights (a backbone: no fc) of {Arch}, {InChannels}-channel conv1: fits model.arch {Arch} as model.pretrained, " +
                "with any model.in_channels (other than the file's: conv1 derived by conv1_init, or fresh) and any model.num_classes but 1000 (fc is fresh)");
        else sb.AppendLine($"  fits {Arch}(in_channels={InChannels}, num_classes={NumClasses}){how}: {(Fits ? "yes" : "no")}");
        foreach (var n in Notes) sb.AppendLine($"    note: {E(n)}");
        foreach (var p in Problems) sb.AppendLine($"    {E(p)}");
        return sb.ToString().TrimEnd();
    }
}

/// <summary>The model a state_dict was saved from, read off its shapes: arch (by the keys and shapes), conv1's input channels, fc's classes, dtype (<c>float32</c> or <c>float64</c>, as <c>train.dtype</c> names it).</summary>
public sealed record InferredModel(ArchSpec Arch, int InChannels, int NumClasses, string Dtype);

/// <summary>Reads a <c>.pth</c> / <c>.safetensors</c> file's keys, shapes and dtypes and checks it against an architecture.</summary>
public static class WeightsInspector
{
    /// <summary>
    /// The model of <paramref name="tensors"/>: in_channels = <c>conv1.weight</c>'s dim 1, num_classes = <c>fc.weight</c>'s
    /// dim 0, the arch among <see cref="ArchSpecs.All"/> whose state_dict layout with those matches exactly (else the one
    /// sharing most keys and shapes), dtype of <c>conv1.weight</c>. Null when there is no conv1 or fc to read.
    /// </summary>
    public static InferredModel? Infer(IReadOnlyList<TensorInfo> tensors)
    {
        var byKey = tensors.GroupBy(t => t.Key).ToDictionary(g => g.Key, g => g.First());
        if (!byKey.TryGetValue("conv1.weight", out var conv1) || conv1.Shape.Length != 4 || conv1.Shape[1] is < 1 or > int.MaxValue) return null;
        if (!byKey.TryGetValue("fc.weight", out var fc) || fc.Shape.Length != 2 || fc.Shape[0] is < 1 or > int.MaxValue) return null;
        int inChannels = (int)conv1.Shape[1], classes = (int)fc.Shape[0];
        int Score(ArchSpec a) => a.StateDictLayout(inChannels, classes).Count(e => byKey.TryGetValue(e.Key, out var t) && t.Shape.SequenceEqual(e.Shape));
        var arch = ArchSpecs.All.MaxBy(a => (Score(a) == a.StateDictLayout(inChannels, classes).Count && byKey.Count == Score(a), Score(a)))!;
        var dtype = conv1.DType == "float64" ? "float64" : "float32";
        return new InferredModel(arch, inChannels, classes, dtype);
    }

    /// <summary>
    /// The architecture whose state_dict, without <c>fc.weight</c> and <c>fc.bias</c>, <paramref name="tensors"/> is exactly
    /// (keys and shapes, conv1 with any input channels), and conv1's input channels; null when none is.
    /// </summary>
    public static (ArchSpec Arch, int InChannels)? BackboneOf(IReadOnlyList<TensorInfo> tensors)
    {
        var conv1 = tensors.FirstOrDefault(t => t.Key == "conv1.weight");
        if (conv1 is not { Shape.Length: 4 } || conv1.Shape[1] is < 1 or > int.MaxValue || tensors.Any(t => t.Key.StartsWith("fc.", StringComparison.Ordinal))) return null;
        int inChannels = (int)conv1.Shape[1];
        var found = tensors.Select(t => (t.Key, ArchSpec.Shape(t.Shape))).ToHashSet();
        var arch = ArchSpecs.All.FirstOrDefault(a =>
        {
            var layout = a.StateDictLayout(inChannels).Where(e => !e.Key.StartsWith("fc.", StringComparison.Ordinal)).Select(e => (e.Key, ArchSpec.Shape(e.Shape))).ToList();
            return layout.Count == tensors.Count && found.SetEquals(layout);
        });
        return arch is null ? null : (arch, inChannels);
    }

    /// <summary>
    /// Inspects <paramref name="path"/> as a checkpoint with no config: the model is the one the file records
    /// (<see cref="CheckpointModel.Find"/>: its metadata, else the JSON beside it), else inferred from the file
    /// (<see cref="Infer"/>), and the file must match its state_dict exactly; a file without <c>fc</c> that is exactly an
    /// architecture's backbone is reported as pretrained weights for it (<see cref="BackboneOf"/>). Otherwise, as
    /// pretrained weights for resnet18(3, 1000).
    /// </summary>
    public static WeightsReport InspectInferred(string path)
    {
        var format = WeightsFile.DetectFormat(path);
        var tensors = WeightsFile.ReadIndex(path).Select(e => new TensorInfo(e.Key, e.Shape, e.DType)).ToList();
        long count = tensors.Where(t => !ArchSpec.IsBuffer(t.Key)).Sum(t => t.Numel);
        if (CheckpointModel.Find(path) is { } found)
        {
            var r = found.Model;
            var arch = ArchSpecs.Get(r.Arch);
            var recordedProblems = PretrainedWeights.Compare(arch.StateDictLayout(r.InChannels, r.NumClasses), tensors.Select(t => (t.Key, t.Shape)).ToList(),
                replaceConv1: false, needConv1: false, replaceFc: false);
            return new WeightsReport(path, format, tensors, count, r.Arch, r.InChannels, r.NumClasses, recordedProblems, [],
                Recorded: r, RecordedIn: found.Source);
        }
        if (Infer(tensors) is not InferredModel m)
            return BackboneOf(tensors) is { } backbone
                ? new WeightsReport(path, format, tensors, count, backbone.Arch.Name, backbone.InChannels, 0, [], [], Backbone: true)
                : Inspect(path);
        var problems = PretrainedWeights.Compare(m.Arch.StateDictLayout(m.InChannels, m.NumClasses), tensors.Select(t => (t.Key, t.Shape)).ToList(),
            replaceConv1: false, needConv1: false, replaceFc: false);
        return new WeightsReport(path, format, tensors, count, m.Arch.Name, m.InChannels, m.NumClasses, problems, [], Inferred: true);
    }

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
        var recorded = CheckpointModel.Find(path);
        return new WeightsReport(path, format, tensors, count, arch.Name, inChannels, numClasses, problems, notes,
            Recorded: recorded?.Model, RecordedIn: recorded?.Source);
    }
}
