using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Model;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// reference/archs.json is the one list of architectures and weights: the library's registry is read from it, the
/// reference program reads it, and every entry is torchvision 0.14's (URL, parameter count, preprocessing, enum members).
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ArchRegistryTests
{
    [Test]
    public void RegistryIsTorchvisionsResNetFamily()
    {
        Assert.That(ArchSpecs.Names, Is.EqualTo(new[] { "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
            "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2" }));
        var resnext = ArchSpecs.Get("resnext50_32x4d");
        Assert.That((resnext.Block, resnext.Groups, resnext.WidthPerGroup), Is.EqualTo((Bottleneck.Type, 32, 4)));
        Assert.That(ArchSpecs.Get("wide_resnet50_2").WidthPerGroup, Is.EqualTo(128));
        Assert.That(ArchSpecs.Get("resnet152").DefaultWeights.Sha256Prefix, Is.EqualTo("394f9c45"));
    }

    /// <summary>The ImageNet-shaped layout has torchvision's <c>meta["num_params"]</c> of every weights entry (checked
    /// against torchvision itself in <see cref="ArchsJsonIsTorchvisions"/>), without building the model.</summary>
    [TestCaseSource(typeof(ArchSpecs), nameof(ArchSpecs.Names))]
    public void LayoutHasTheWeightsParameterCount(string arch)
    {
        var spec = ArchSpecs.Get(arch);
        long count = spec.StateDictLayout().Where(e => !ArchSpec.IsBuffer(e.Key)).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b));
        foreach (var w in spec.Weights) Assert.That(count, Is.EqualTo(w.NumParams), $"{arch} {w.Name}");
    }

    /// <summary>reference/resnet_mnist.py builds exactly the registry's architectures (it reads the same file).</summary>
    [Test, Category("NeedsPyTorch")]
    public void ReferenceReadsTheSameArchitectures()
    {
        Python.RequireTorch();
        var output = Python.Run("""
            import json, os, sys
            sys.path.insert(0, os.path.join(sys.argv[1], "reference"))
            import resnet_mnist as rm
            print(json.dumps(list(rm.ARCHS)))
            """, Repo.Path());
        Assert.That(JsonSerializer.Deserialize<string[]>(output.Trim().Split('\n')[^1]), Is.EqualTo(ArchSpecs.Names.ToArray()));
    }

    /// <summary>Every entry against torchvision's own weight enums: URL, num_params, resize/crop sizes, mean, std, and
    /// the enum's members (DEFAULT aside) are exactly the entry's torch.hub weights.</summary>
    [Test, Category("NeedsPyTorch")]
    public void ArchsJsonIsTorchvisions()
    {
        Python.RequireTorch();
        var output = Python.Run("""
            import json, sys
            import torchvision.models as M
            problems = []
            for a in json.load(open(sys.argv[1]))["archs"]:
                W = M.get_model_weights(a["name"])
                hub = [w for w in a["weights"] if "url" in w]
                if sorted(n for n in W.__members__ if n != "DEFAULT") != sorted(w["name"] for w in hub):
                    problems.append(f"{a['name']}: torchvision has {list(W.__members__)}")
                for w in hub:
                    t = W[w["name"]]
                    tf = t.transforms()
                    got = (t.url, t.meta["num_params"], tf.resize_size, tf.crop_size, list(tf.mean), list(tf.std))
                    want = (w["url"], w["num_params"], [w["resize_size"]], [w["crop_size"]], w["mean"], w["std"])
                    if got != want:
                        problems.append(f"{a['name']} {w['name']}: torchvision {got}, archs.json {want}")
            print(json.dumps(problems))
            """, Repo.Path("reference", "archs.json"));
        Assert.That(JsonSerializer.Deserialize<string[]>(output.Trim().Split('\n')[^1]), Is.Empty);
    }
}
