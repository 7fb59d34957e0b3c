using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>
/// torchvision's <c>Bottleneck</c> (expansion 4, ResNet v1.5: the stride sits on the 3×3 convolution): 1×1 conv
/// reducing to <c>planes</c>, 3×3 conv, 1×1 conv expanding to <c>planes × 4</c>, each followed by BatchNorm, and an
/// optional <c>downsample</c> (1×1 conv + BN) on the identity path. Field names are the state_dict keys; fields are
/// created in torchvision's registration order (conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample).
/// </summary>
public sealed class Bottleneck : ResidualBlock
{
    const int Expansion = 4;

    /// <summary>The type: expansion 4; conv1 (1×1), bn1, conv2 (3×3, the stride), bn2, conv3 (1×1), bn3. (groups 1, base_width 64: width = planes.)</summary>
    public static readonly BlockType Type = new(nameof(Bottleneck), Expansion,
        (inplanes, planes, stride, downsample) => new Bottleneck(inplanes, planes, stride, downsample),
        (layout, p, inC, planes) =>
        {
            layout.Conv(p + ".conv1", inC, planes, 1); layout.Bn(p + ".bn1", planes);
            layout.Conv(p + ".conv2", planes, planes, 3); layout.Bn(p + ".bn2", planes);
            layout.Conv(p + ".conv3", planes, planes * Expansion, 1); layout.Bn(p + ".bn3", planes * Expansion);
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

    /// <summary>
    /// Builds the block. <paramref name="downsample"/> is built by the caller <em>before</em> this block, as
    /// torchvision's <c>_make_layer</c> does: constructors draw from the RNG, so the order decides the init.
    /// (groups 1, base_width 64: width = planes.)
    /// </summary>
    public Bottleneck(int inplanes, int planes, int stride = 1, Sequential? downsample = null) : base(nameof(Bottleneck))
    {
        int width = planes;
        conv1 = Layers.Conv1x1(inplanes, width);
        bn1 = BatchNorm2d(width);
        conv2 = Layers.Conv3x3(width, width, stride);
        bn2 = BatchNorm2d(width);
        conv3 = Layers.Conv1x1(width, planes * Expansion);
        bn3 = BatchNorm2d(planes * Expansion);
        relu = ReLU(inplace: true);
        this.downsample = downsample;
        this.stride = stride;
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
        y = graph.Relu(graph.Bn(graph.Conv(y, prefix + ".conv2", 3, stride, 1), prefix + ".bn2"));
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

        @out = @out.add_(identity);
        @out = relu.call(@out);
        return @out.MoveToOuterDisposeScope();
    }
}
