using ResnetMnist.Config;
using NUnit.Framework;
using ResnetMnist.Model;
using ResnetMnist.Weights;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Weights;

[TestFixture, Category("Weights")]
public sealed class FreezingTests
{
    [Test]
    public void OneSgdStepAfterMlnetWeightsMovesExactlyTheUnfrozenParameters()
    {
        string[] frozen = ["conv1", "bn1", "layer1"];
        manual_seed(0);
        using var m = Models.resnet18(1, 10);
        PretrainedWeights.Load(m, TestFiles.MlnetPth, Conv1Init.SumRgb);
        Freezing.Apply(m, frozen);
        m.train();
        Freezing.KeepFrozenBatchNormInEval(m, frozen);

        var before = m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var trainable = m.parameters().Where(p => p.requires_grad).ToList();
        using var opt = optim.SGD(trainable, 0.1);
        using var x = randn(8, 1, 28, 28);
        using var y = randint(0, 10, [8]);
        ResnetMnist.Training.TrainingLoop.Step(m, opt, x, y);

        var after = m.state_dict();
        foreach (var (name, p) in m.named_parameters())
        {
            bool isFrozen = frozen.Any(f => name.StartsWith(f + ".", StringComparison.Ordinal));
            Assert.That(p.requires_grad, Is.EqualTo(!isFrozen), name);
            Assert.That(after[name].Same(before[name]), Is.EqualTo(isFrozen), $"{name} {(isFrozen ? "changed" : "did not change")}");
        }
        // Frozen BatchNorm keeps its running statistics; the others update theirs.
        Assert.That(after["bn1.running_mean"].Same(before["bn1.running_mean"]));
        Assert.That(after["layer1.1.bn2.running_var"].Same(before["layer1.1.bn2.running_var"]));
        Assert.That(after["layer2.0.bn1.running_mean"].Same(before["layer2.0.bn1.running_mean"]), Is.False);
    }

    [Test]
    public void BnEvalKeepsEveryBatchNormInEvalMode()
    {
        using var m = Models.resnet18(1, 10);
        m.train();
        Freezing.KeepFrozenBatchNormInEval(m, [], allBatchNorm: true);
        var bns = m.modules().OfType<TorchSharp.Modules.BatchNorm>().ToList();
        Assert.That(bns, Has.Count.EqualTo(20));
        Assert.That(bns.All(b => !b.training));
        Assert.That(m.training, Is.True);
    }

    [Test]
    public void UnknownNamesListTheAllowedOnes()
    {
        using var m = Models.resnet18(1, 10);
        var e = Assert.Throws<ConfigException>(() => Freezing.Apply(m, ["layer5", "conv1"]))!;
        Assert.That(e.Message, Does.Contain("layer5").And.Contain("conv1, bn1, layer1, layer2, layer3, layer4, fc"));
    }
}
