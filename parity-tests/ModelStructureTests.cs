using NUnit.Framework;
using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests;

/// <summary>resnet18's parameter and state_dict counts are torchvision's; the forward pass gives one logit per class.</summary>
[TestFixture, Category("Parity")]
public sealed class ModelStructureTests
{
    [Test]
    public void Resnet18ForMnistHasTorchvisionCounts()
    {
        using var m = Models.resnet18(inChannels: 1, numClasses: 10);
        Assert.That(m.state_dict().Count, Is.EqualTo(122));
        Assert.That(m.parameters().Sum(p => p.numel()), Is.EqualTo(11_175_370));
    }

    [Test]
    public void Resnet18ImagenetShapeHasTorchvisionParameterCount()
    {
        using var m = Models.resnet18();
        Assert.That(m.parameters().Sum(p => p.numel()), Is.EqualTo(11_689_512));
    }

    [Test]
    public void ForwardGivesOneLogitPerClass()
    {
        using var m = Models.resnet18(1, 10);
        using var y = m.forward(zeros(2, 1, 28, 28));
        Assert.That(y.shape, Is.EqualTo(new long[] { 2, 10 }));
    }
}
