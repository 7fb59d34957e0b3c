using ResnetMnist.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>
/// torchvision's <c>ResNet</c> as an <see cref="ArchSpec"/> describes it, module for module: <c>conv1, bn1, relu, maxpool,
/// layer1..layer4, avgpool, fc</c>, so that its state_dict keys are torchvision's.
/// </summary>
/// <remarks>
/// Construction reproduces, draw for draw from the global generator, what this does in PyTorch:
/// <code>
/// m = torchvision.models.resnet18()  # or any other of reference/archs.json: 3 channels, 1000 classes, kaiming_normal_ init
/// m.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)   # only when in_channels != 3
/// m.fc = nn.Linear(m.fc.in_features, num_classes)             # only when num_classes != 1000 (512, or 2048 for Bottleneck)
/// </code>
/// so <c>manual_seed(s)</c> followed by either gives bit-identical parameters.
/// </remarks>
public sealed class ResNet : Module<Tensor, Tensor>
{
    /// <summary>Names of the top-level children, in forward order (torchvision's).</summary>
    public static readonly string[] LayerNames =
        ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"];

    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly ReLU relu;
    readonly MaxPool2d maxpool;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Linear fc;

    /// <summary>Input channels of <c>conv1</c>.</summary>
    public int InChannels { get; }
    /// <summary>Outputs of <c>fc</c>.</summary>
    public int NumClasses { get; }
    /// <summary>The architecture it was built from.</summary>
    public ArchSpec Spec { get; }

    /// <param name="spec">Block type, blocks per stage, groups and width per group (<see cref="ArchSpecs"/>).</param>
    /// <param name="inChannels">Image channels (1 for MNIST).</param>
    /// <param name="numClasses">Classes (10 for MNIST).</param>
    public ResNet(ArchSpec spec, int inChannels = 3, int numClasses = 1000) : base(nameof(ResNet))
    {
        NativeLoader.EnsureLoaded();
        var layers = spec.Layers;
        Spec = spec;
        InChannels = inChannels;
        NumClasses = numClasses;

        // torchvision's ResNet.__init__, in its order.
        int inplanes = 64;
        conv1 = Conv2d(3, inplanes, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = new BatchNorm2d(inplanes);
        relu = ReLU(inplace: true);
        maxpool = new MaxPool2d(kernelSize: 3, stride: 2, padding: 1);
        layer1 = MakeLayer(spec, ref inplanes, 64, layers[0], stride: 1);
        layer2 = MakeLayer(spec, ref inplanes, 128, layers[1], stride: 2);
        layer3 = MakeLayer(spec, ref inplanes, 256, layers[2], stride: 2);
        layer4 = MakeLayer(spec, ref inplanes, 512, layers[3], stride: 2);
        avgpool = AdaptiveAvgPool2d(new long[] { 1, 1 });
        fc = Linear(spec.Features, 1000);

        // for m in self.modules(): Conv2d -> kaiming_normal_(fan_out, relu); BatchNorm -> 1, 0 (already so).
        using (no_grad())
        {
            foreach (var conv in ConvsInModuleOrder())
                init.kaiming_normal_(conv.weight!, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
        }

        // The reference program's replacements, after the model is built (they draw from the generator last).
        if (inChannels != 3) conv1 = Conv2d(inChannels, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        if (numClasses != 1000) fc = Linear(spec.Features, numClasses);

        RegisterComponents();
    }

    /// <summary>torchvision's <c>_make_layer</c>: the downsample (when the stride or the width changes) is built
    /// before the first block, then the blocks in order.</summary>
    static Sequential MakeLayer(ArchSpec spec, ref int inplanes, int planes, int blocks, int stride)
    {
        var block = spec.Block;
        var shape = new BlockShape(spec.Groups, spec.WidthPerGroup);
        int outC = planes * block.Expansion;
        Sequential? downsample = null;
        if (stride != 1 || inplanes != outC)
            downsample = Sequential(("0", Layers.Conv1x1(inplanes, outC, stride)), ("1", new BatchNorm2d(outC)));

        var list = new List<(string, Module<Tensor, Tensor>)> { ("0", block.Create(inplanes, planes, stride, downsample, shape)) };
        inplanes = outC;
        for (int i = 1; i < blocks; i++)
            list.Add((i.ToString(), block.Create(inplanes, planes, 1, null, shape)));
        return Sequential(list);
    }

    /// <summary>Every residual block with its state_dict prefix (<c>layer1.0</c>, ...), in forward order.</summary>
    public IEnumerable<(string Prefix, ResidualBlock Block)> Blocks()
    {
        var layers = new[] { layer1, layer2, layer3, layer4 };
        for (int s = 0; s < layers.Length; s++)
        {
            int i = 0;
            foreach (var block in layers[s].children())
                yield return ($"layer{s + 1}.{i++}", (ResidualBlock)block);
        }
    }

    IEnumerable<Conv2d> ConvsInModuleOrder()
    {
        yield return conv1;
        foreach (var (_, block) in Blocks())
            foreach (var conv in block.Convs())
                yield return conv;
    }

    public override Tensor forward(Tensor x) => Run(x, null);

    /// <summary>Runs the forward pass and returns every top-level layer's output, in order (for parity checks).</summary>
    public IReadOnlyList<(string Name, Tensor Output)> ForwardLayers(Tensor x)
    {
        var outputs = new List<(string, Tensor)>();
        Run(x, (name, t) => outputs.Add((name, t.clone().DetachFromDisposeScope())));
        return outputs;
    }

    Tensor Run(Tensor x, Action<string, Tensor>? record)
    {
        // Each intermediate is released as soon as the next layer has consumed it, as PyTorch's reference counting
        // does (autograd keeps its own references to what backward needs). Holding them all until the end of the
        // forward pass would cost ~130 MB more at a batch of 1,000.
        var input = x;
        Tensor Next(Tensor next, string? name)
        {
            if (name is not null) record?.Invoke(name, next);
            if (!ReferenceEquals(x, input) && !ReferenceEquals(x, next)) x.Dispose();
            return x = next;
        }

        Next(conv1.call(x), "conv1");
        Next(bn1.call(x), "bn1");
        Next(relu.call(x), "relu");
        Next(maxpool.call(x), "maxpool");

        Next(layer1.call(x), "layer1");
        Next(layer2.call(x), "layer2");
        Next(layer3.call(x), "layer3");
        Next(layer4.call(x), "layer4");

        Next(avgpool.call(x), "avgpool");
        Next(flatten(x, 1), null);
        return Next(fc.call(x), "fc");
    }
}
