using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>
/// torchvision's <c>Bottleneck</c> (expansion 4, ResNet v1.5: the stride sits on the 3×3 convolution): 1×1 conv
/// to the inner width (<c>planes</c>; wider for wide ResNets), 3×3 conv in <c>groups</c> groups (ResNeXt), 1×1 conv
/// expanding to <c>planes × 4</c>, each followed by BatchNorm, and an
/// optional <c>downsample</c> (1×1 conv + BN) on the identity path. Field names are the state_dict keys; fields are
/// created in torchvision's registration order (conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample).
/// </summary>
public sealed class Bottleneck : ResidualBlock
{
    /// <summary>The type: expansion 4; conv1 (1×1 to width), bn1, conv2 (3×3, the stride, groups), bn2, conv3 (1×1 to
    /// planes × 4), bn3; width = <c>int(planes * base_width / 64) * groups</c> (<see cref="BlockShape.Width"/>).</summary>
    public static readonly BlockType Type = new(nameof(Bottleneck), Expansion: 4,
        (inplanes, planes, stride, downsample, shape) => new Bottleneck(inplanes, planes, stride, downsample, shape),
        (layout, p, inC, planes, shape) =>
        {
            long width = shape.Width(planes), outC = planes * 4;
            layout.Conv(p + ".conv1", inC, width, 1); layout.Bn(p + ".bn1", width);
            layout.Conv(p + ".conv2", width, width, 3, shape.Groups); layout.Bn(p + ".bn2", width);
            layout.Conv(p + ".conv3", width, outC, 1); layout.Bn(p + ".bn3", outC);
        });

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly Conv2d conv3;
    readonly BatchNorm2d bn3;
    readonly ReLU relu;
    readonly Sequential? downsample;
    readonly int stride;
    readonly int groups;

    /// <summary>
    /// Builds the block. <paramref name="downsample"/> is built by the caller <em>before</em> this block, as
    /// torchvision's <c>_make_layer</c> does: constructors draw from the RNG, so the order decides the init.
    /// </summary>
    /// <param name="shape">groups and base width (default: 1 and 64, width = planes).</param>
    public Bottleneck(int inplanes, int planes, int stride = 1, Sequential? downsample = null, BlockShape? shape = null) : base(nameof(Bottleneck))
    {
        var (width, groupCount) = ((shape ?? BlockShape.Plain).Width(planes), (shape ?? BlockShape.Plain).Groups);
        int outC = planes * Type.Expansion;
        conv1 = Layers.Conv1x1(inplanes, width);
        bn1 = new BatchNorm2d(width);
        conv2 = Layers.Conv3x3(width, width, stride, groupCount);
        bn2 = new BatchNorm2d(width);
        conv3 = Layers.Conv1x1(width, outC);
        bn3 = new BatchNorm2d(outC);
        relu = ReLU(inplace: true);
        this.downsample = downsample;
        this.stride = stride;
        groups = groupCount;
        RegisterComponents();
    }

    /// <summary>The convolutions in torchvision's <c>modules()</c> order: conv1, conv2, conv3, then downsample.0.</summary>
    public override IEnumerable<Conv2d> Convs()
    {
        yield return conv1;
        yield return conv2;
        yield return conv3;
        if (downsample is not null) yield return (Conv2d)downsample[0];
    }

    public override string Emit(IGraphBuilder graph, string x, string prefix)
    {
        var y = graph.Relu(graph.Bn(graph.Conv(x, prefix + ".conv1", 1, 1, 0), prefix + ".bn1"));
        y = graph.Relu(graph.Bn(graph.Conv(y, prefix + ".conv2", 3, stride, 1, groups), prefix + ".bn2"));
        y = graph.Bn(graph.Conv(y, prefix + ".conv3", 1, 1, 0), prefix + ".bn3");
        return graph.Relu(graph.Add(y, Identity(graph, x, prefix, downsample, stride), prefix + ".add"));
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = x;

        var @out = conv1.call(x);
        @out = bn1.call(@out);
        @out = relu.call(@out);

        @out = conv2.call(@out);
        @out = bn2.call(@out);
        @out = relu.call(@out);

        @out = conv3.call(@out);
        @out = bn3.call(@out);

        if (downsample is not null)
            identity = downsample.call(x);

        @out = AddIdentity(@out, identity);
        @out = relu.call(@out);
        return @out.MoveToOuterDisposeScope();
    }
}
