using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>
/// A residual block type, the <c>block</c> torchvision's <c>ResNet(block, layers, groups, width_per_group)</c> takes
/// (<c>BasicBlock</c>, <c>Bottleneck</c>): everything a ResNet, its state_dict layout and its export ask of the type.
/// Each block class holds its own as <c>Type</c>, listed once in <see cref="All"/>, so a new block is one class.
/// </summary>
/// <param name="Name">torchvision's class name (the <c>block</c> of <c>reference/archs.json</c>).</param>
/// <param name="Expansion">Output channels per unit of stage width (torchvision's <c>block.expansion</c>).</param>
/// <param name="Create">Builds a block: (inplanes, planes, stride, downsample, shape). The downsample is built by the
/// caller <em>before</em> the block, as <c>_make_layer</c> does: constructors draw from the generator, so the order decides the init.</param>
/// <param name="Layout">Adds the block's own tensors (its downsample excepted) to a state_dict layout: (layout, key
/// prefix, input channels, planes, shape), in the block's registration order.</param>
public sealed record BlockType(string Name, int Expansion,
    Func<int, int, int, Sequential?, BlockShape, ResidualBlock> Create,
    Action<LayoutBuilder, string, long, long, BlockShape> Layout)
{
    /// <summary>Every block type, by <see cref="Name"/>.</summary>
    public static IReadOnlyList<BlockType> All => [BasicBlock.Type, Bottleneck.Type];
}

/// <summary>torchvision's <c>groups</c> and <c>width_per_group</c> (<c>base_width</c>), as every block of an architecture gets them.</summary>
/// <param name="Groups">Groups of the grouped (3×3) convolution.</param>
/// <param name="BaseWidth">Channels per group at stage width 64.</param>
public readonly record struct BlockShape(int Groups, int BaseWidth)
{
    /// <summary>groups 1, base width 64: every ResNet but ResNeXt and the wide ones.</summary>
    public static readonly BlockShape Plain = new(1, 64);

    /// <summary>Bottleneck's inner width: <c>int(planes * (base_width / 64.0)) * groups</c>.</summary>
    public int Width(long planes) => (int)(planes * (BaseWidth / 64.0)) * Groups;
}

/// <summary>A residual block module: its convolutions for the initialisation loop, and its forward pass as a graph for export.</summary>
public abstract class ResidualBlock(string name) : Module<Tensor, Tensor>(name)
{
    /// <summary>The convolutions in torchvision's <c>modules()</c> order, the downsample's last.</summary>
    public abstract IEnumerable<Conv2d> Convs();

    /// <summary>Writes the block's forward pass into <paramref name="graph"/>, from input <paramref name="x"/>, naming
    /// tensors by the state_dict prefix <paramref name="prefix"/> (<c>layer2.0</c>); returns the output's name.</summary>
    public abstract string Emit(IGraphBuilder graph, string x, string prefix);

    /// <summary><c>out += identity</c>, in place, with the process's Scalar 1 as alpha (<see cref="Core.Scalars"/>).</summary>
    protected static Tensor AddIdentity(Tensor @out, Tensor identity) => @out.add_(identity, Core.Scalars.One);

    /// <summary>The identity path: <paramref name="x"/>, or its downsample (1×1 conv with the block's stride, then BN).</summary>
    protected static string Identity(IGraphBuilder graph, string x, string prefix, Sequential? downsample, int stride) =>
        downsample is null ? x : graph.Bn(graph.Conv(x, prefix + ".downsample.0", 1, stride, 0), prefix + ".downsample.1");
}

/// <summary>The operations a block's forward pass is written in, for an exporter (<see cref="ResidualBlock.Emit"/>):
/// each takes and returns tensor names; parameters are named by their state_dict keys.</summary>
public interface IGraphBuilder
{
    /// <summary>Convolution with the weight <c>{prefix}.weight</c> (no bias), square kernel, stride, padding and groups.</summary>
    string Conv(string x, string prefix, int kernel, int stride, int pad, int groups = 1);
    /// <summary>Eval-mode BatchNorm with <c>{prefix}.weight/bias/running_mean/running_var</c>.</summary>
    string Bn(string x, string prefix);
    string Relu(string x);
    /// <summary>Elementwise sum; <paramref name="name"/> names the node.</summary>
    string Add(string a, string b, string name);
}

/// <summary>A state_dict's keys and shapes in torchvision's order, written without building a model (<see cref="ArchSpec.StateDictLayout"/>).</summary>
public sealed class LayoutBuilder
{
    public List<(string Key, long[] Shape)> Entries { get; } = [];

    /// <summary>A weight (or bias) of the given shape.</summary>
    public void Tensor(string key, params long[] shape) => Entries.Add((key, shape));

    /// <summary>A convolution's weight: out × in/groups × kernel × kernel (no bias).</summary>
    public void Conv(string prefix, long inC, long outC, int kernel, int groups = 1) => Tensor(prefix + ".weight", outC, inC / groups, kernel, kernel);

    /// <summary>A BatchNorm2d's parameters and buffers.</summary>
    public void Bn(string prefix, long channels)
    {
        Tensor(prefix + ".weight", channels); Tensor(prefix + ".bias", channels);
        Tensor(prefix + ".running_mean", channels); Tensor(prefix + ".running_var", channels);
        Tensor(prefix + ".num_batches_tracked");
    }
}
