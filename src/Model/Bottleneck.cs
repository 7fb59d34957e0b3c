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
public sealed class Bottleneck : Module<Tensor, Tensor>
{
    public const int Expansion = 4;

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly Conv2d conv3;
    readonly BatchNorm2d bn3;
    readonly ReLU relu;
    readonly Sequential? downsample;

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
        RegisterComponents();
    }

    /// <summary>The convolutions in torchvision's <c>modules()</c> order: conv1, conv2, conv3, then downsample.0.</summary>
    public IEnumerable<Conv2d> Convs()
    {
        yield return conv1;
        yield return conv2;
        yield return conv3;
        if (downsample is not null) yield return (Conv2d)downsample[0];
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = x;

        var @out = conv1.forward(x);
        @out = bn1.forward(@out);
        @out = relu.forward(@out);

        @out = conv2.forward(@out);
        @out = bn2.forward(@out);
        @out = relu.forward(@out);

        @out = conv3.forward(@out);
        @out = bn3.forward(@out);

        if (downsample is not null)
            identity = downsample.forward(x);

        @out = @out.add_(identity);
        @out = relu.forward(@out);
        return @out.MoveToOuterDisposeScope();
    }
}
