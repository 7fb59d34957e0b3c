using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Model;
using ResnetMnist.Weights;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>
/// <c>model.pretrained</c> is resolved once, when the config is read, against <c>model.arch</c>'s weights in the
/// registry: torchvision's enum names, <c>torchvision</c> as the alias of IMAGENET1K_V1, <c>mlnet</c> where it exists, a
/// path; advice and errors name only what exists for that architecture.
/// </summary>
[TestFixture, Category("Config")]
public sealed class PretrainedChoiceTests
{
    [TestCase("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232)]
    [TestCase("resnet50", "imagenet1k_v2", "resnet50-11ad3fa6.pth", 232)]
    [TestCase("resnet50", "torchvision", "resnet50-0676ba61.pth", 256)]
    [TestCase("resnext50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 256)]
    [TestCase("resnext101_64x4d", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 232)]
    [TestCase("wide_resnet101_2", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 232)]
    public void WeightsNamesResolveToTheArchitecturesEntry(string arch, string name, string file, int resize)
    {
        var c = ConfigLoader.Parse($"model:\n  arch: {arch}\n  pretrained: {name}\n", null);
        Assert.That(c.Model.Arch, Is.SameAs(ArchSpecs.Get(arch)));
        Assert.That(c.Model.Pretrained.Weights!.FileName, Is.EqualTo(file));
        Assert.That(c.Model.Pretrained.Weights.Transforms.ResizeSize, Is.EqualTo(resize));
        Assert.That(c.Model.Pretrained.Weights.Transforms.CropSize, Is.EqualTo(224));
        // Written back as the user's alias or torchvision's spelling, and read back to the same choice.
        var again = ConfigLoader.Parse(ConfigSchema.ToYaml(c), null);
        Assert.That(again.Model.Pretrained, Is.EqualTo(c.Model.Pretrained));
        Assert.That(ConfigSchema.ResultValues(c)["model.pretrained"], Is.EqualTo(name.Equals("torchvision", StringComparison.OrdinalIgnoreCase) ? "torchvision" : name.ToUpperInvariant()));
    }

    [Test]
    public void MlnetIsResnet18sAndRefusedElsewhereNamingWhatExists()
    {
        var ok = ConfigLoader.Parse("model:\n  pretrained: mlnet\n", null);
        Assert.That(ok.Model.Pretrained.Weights!.IsMlnet, Is.True);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("model:\n  arch: resnet50\n  pretrained: mlnet\n", "/x/c.yaml"))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith("/x/c.yaml:3:15: model.pretrained: 'mlnet' holds no weights for model.arch resnet50 (only for resnet18); " +
            "allowed for resnet50: none, torchvision (= IMAGENET1K_V1), IMAGENET1K_V1, IMAGENET1K_V2, or a path"));
        Assert.That(e.Message.Split('\n'), Has.Length.EqualTo(1));
        var v2 = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, ["model.pretrained=IMAGENET1K_V2"]))!;
        Assert.That(v2.Message, Does.Contain("'IMAGENET1K_V2' holds no weights for model.arch resnet18 (only for resnet50, resnet101, resnet152"));
        Assert.That(v2.Message, Does.Contain("allowed for resnet18: none, torchvision (= IMAGENET1K_V1), IMAGENET1K_V1, mlnet, or a path"));
    }

    [Test]
    public void UnknownNamesGetDidYouMean()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, ["model.arch=resnet101", "model.pretrained=IMAGENET1K_V3"]))!;
        Assert.That(e.Message, Does.Contain("model.pretrained: 'IMAGENET1K_V3' is not allowed (did you mean 'IMAGENET1K_V1'?); allowed for resnet101:"));
        var arch = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, ["model.arch=resnext50_32x8d"]))!;
        Assert.That(arch.Message, Does.Contain("(did you mean 'resnext50_32x4d'?)"));
    }

    /// <summary>Offline advice comes from the registry: resnet18 is told of mlnet, an architecture without offline weights
    /// is not (resnet50: FileTextAndFailureTests).</summary>
    [TestCase("resnet18", true)]
    [TestCase("wide_resnet50_2", false)]
    public void OfflineAdviceNamesOnlyWeightsThatExistForTheArchitecture(string arch, bool mlnet)
    {
        var dir = Path.Combine(TestFiles.Dir, "offline-" + arch);
        var weights = ArchSpecs.Get(arch).DefaultWeights;
        // An unreachable address stands for "offline" on any machine.
        var e = Assert.Throws<WeightsFileException>(() => PretrainedWeights.EnsureTorchvisionFile(dir, weights, url: "http://127.0.0.1:9/" + weights.FileName))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message.Contains("pretrained: mlnet"), Is.EqualTo(mlnet));
        if (!mlnet) Assert.That(e.Message, Does.Contain($"the path of a {weights.FileName} copied from elsewhere, or to none"));
        // Every weights name the advice gives is accepted for that architecture.
        if (mlnet) Assert.That(ConfigLoader.Parse("", null, [$"model.arch={arch}", "model.pretrained=mlnet"]).Model.Pretrained.Weights!.IsMlnet);
    }

    /// <summary><c>weights inspect</c> of the tool's own ImageNet conversion (no fc): pretrained weights for resnet18, fits.</summary>
    [Test]
    public void InspectingABackboneSaysWhatItFits()
    {
        var r = WeightsInspector.InspectInferred(TestFiles.MlnetPth);
        TestContext.Out.WriteLine(r.ToString());
        Assert.That((r.Backbone, r.Fits, r.Arch, r.InChannels), Is.EqualTo((true, true, "resnet18", 3)));
        Assert.That(r.ToString(), Does.Contain("pretrained weights (a backbone: no fc) of resnet18, 3-channel conv1: fits model.arch resnet18 as model.pretrained"));
        Assert.That(r.ToString(), Does.Not.Contain("missing"));
        // A backbone of no registered architecture is still judged as before.
        Assert.That(WeightsInspector.BackboneOf([new TensorInfo("conv1.weight", [64, 3, 7, 7], "float32")]), Is.Null);
    }
}
