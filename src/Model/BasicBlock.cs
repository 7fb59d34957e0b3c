using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>
/// torchvision's <c>BasicBlock</c> (expansion 1): two 3×3 convolutions with BatchNorm, and an optional
/// <c>downsample</c> (1×1 conv + BN) on the identity path. Field names are the state_dict keys.
/// </summary>
public sealed class BasicBlock : ResidualBlock
{
    /// <summary>The type: expansion 1; conv1, bn1, conv2, bn2 (3×3, the stride on conv1); groups 1 and base width 64 only.</summary>
    public static readonly BlockType Type = new(nameof(BasicBlock), Expansion: 1,
        (inplanes, planes, stride, downsample, shape) => new BasicBlock(inplanes, planes, stride, downsample, shape),
        (layout, p, inC, planes, shape) =>
        {
            Check(shape);
            layout.Conv(p + ".conv1", inC, planes, 3); layout.Bn(p + ".bn1", planes);
            layout.Conv(p + ".conv2", planes, planes, 3); layout.Bn(p + ".bn2", planes);
        });

    /// <summary>torchvision's own refusal: <c>BasicBlock only supports groups=1 and base_width=64</c>.</summary>
    static void Check(BlockShape shape)
    {
        if (shape != BlockShape.Plain) throw new ArgumentException($"BasicBlock only supports groups=1 and base_width=64, not {shape.Groups} and {shape.BaseWidth}");
    }

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly ReLU relu;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly Sequential? downsample;
    readonly int stride;

    /// <summary>
    /// Builds the block. <paramref name="downsample"/> is built by the caller <em>before</em> this block, as
    /// torchvision's <c>_make_layer</c> does: constructors draw from the RNG, so the order decides the init.
    /// </summary>
    public BasicBlock(int inplanes, int planes, int stride = 1, Sequential? downsample = null, BlockShape? shape = null) : base(nameof(BasicBlock))
    {
        Check(shape ?? BlockShape.Plain);
        conv1 = Layers.Conv3x3(inplanes, planes, stride);
        bn1 = new BatchNorm2d(planes);
        relu = ReLU(inplace: true);
        conv2 = Layers.Conv3x3(planes, planes);
        bn2 = new BatchNorm2d(planes);
        this.downsample = downsample;
        this.stride = stride;
        RegisterComponents();
    }

    /// <summary>The convolutions in torchvision's <c>modules()</c> order: conv1, conv2, then downsample.0.</summary>
    public override IEnumerable<Conv2d> Convs()
    {
        yield return conv1;
        yield return conv2;
        if (downsample is not null) yield return (Conv2d)downsample[0];
    }

    public override string Emit(IGraphBuilder graph, string x, string prefix)
    {
        var y = graph.Relu(graph.Bn(graph.Conv(x, prefix + ".conv1", 3, stride, 1), prefix + ".bn1"));
        y = graph.Bn(graph.Conv(y, prefix + ".conv2", 3, 1, 1), prefix + ".bn2");
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

        if (downsample is not null)
            identity = downsample.call(x);

        @out = AddIdentity(@out, identity);
        @out = relu.call(@out);
        return @out.MoveToOuterDisposeScope();
    }
}
