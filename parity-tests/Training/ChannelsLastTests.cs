using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Model;
using ResnetMnist.Training;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// <c>model.channels_last</c> as a training step runs it: the input batch, every module's output (convolutions,
/// batch norms, ReLUs after the residual add, pooling, each block and stage), every convolution weight (after the
/// optimizer has made it a slice of its flat buffer) and every weight gradient must carry the channels-last layout
/// libtorch picks its kernels by (<see cref="MemoryFormat.SuggestsChannelsLast"/>, c10's rule), as in PyTorch after
/// <c>model.to(memory_format=torch.channels_last)</c> and <c>x.to(memory_format=torch.channels_last)</c>. A layout
/// lost anywhere makes libtorch convert back and forth, or run that part of the network in NCHW.
/// </summary>
[TestFixture, Category("Training")]
public sealed class ChannelsLastTests
{
    static TrainingConfig Config(string arch) => ConfigLoader.Parse($$"""
        seed: 1
        threads: 1
        data: {dataset: mnist, root: '{{Repo.Path("data")}}', train_limit: 4, test_limit: 4}
        model: {arch: {{arch}}, channels_last: true}
        train: {epochs: 1, batch_size: 4}
        optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
        """, null);

    /// <summary>Why <paramref name="t"/> (4-D) is not channels-last, or null. A 1×1 activation (layer4 of a 28×28
    /// input) is in both layouts at once and libtorch's strides for it are ambiguous, so only its density is checked.</summary>
    static string? Problem(string name, Tensor t)
    {
        if (t.dim() != 4) return null;
        string Describe() => $"{name}: shape [{string.Join(", ", t.shape)}] strides [{string.Join(", ", t.stride())}]";
        if (!MemoryFormat.IsChannelsLast(t)) return Describe() + " is not dense in channels-last order";
        if (t.shape[2] * t.shape[3] > 1 || name.EndsWith(".weight", StringComparison.Ordinal))
            if (!MemoryFormat.SuggestsChannelsLast(t)) return Describe() + " is not taken as channels-last by libtorch";
        return null;
    }

    [TestCase("resnet18"), TestCase("resnet50")]
    public void EveryLayerActivationWeightAndGradientStaysChannelsLast(string arch)
    {
        using var scope = NewDisposeScope();
        using var session = Session.Create(Config(arch));
        var model = session.Model;
        using var optimizer = Optimizers.Create(session.Config.Optimizer, model.parameters());
        var problems = new List<string>();
        var seen = new HashSet<string>();
        foreach (var (name, module) in model.named_modules())
            if (module is nn.Module<Tensor, Tensor> m && name != "")
                m.register_forward_hook((_, input, output) =>
                {
                    seen.Add(name);
                    if (name == "conv1" && Problem("input batch", input) is string p) problems.Add(p);
                    if (Problem(name, output) is string q) problems.Add(q);
                    return output;
                });

        using var indices = arange(0L, 4L);
        // Two steps: the second runs on the flat buffers the first step's optimizer left (momentum state included).
        for (int step = 0; step < 2; step++)
            TrainingLoop.Step(model, optimizer, session.Train, indices);

        foreach (var (name, p) in model.named_parameters())
        {
            if (Problem(name, p) is string pp) problems.Add(pp);
            if (p.grad is { } g && Problem(name + " (gradient)", g) is string gp) problems.Add(gp);
        }
        Assert.That(((IFlatStep)optimizer).LastStepFlat, Is.True, "the weights were slices of the flat buffers");
        // every convolution, batch norm and ReLU of every block reported (so the hooks saw the whole network)
        var convs = model.named_modules().Count(m => m.module is TorchSharp.Modules.Conv2d);
        Assert.That(seen.Count(n => model.named_modules().First(m => m.name == n).module is TorchSharp.Modules.Conv2d), Is.EqualTo(convs));
        Assert.That(problems, Is.Empty);
    }
}
