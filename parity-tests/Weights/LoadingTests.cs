using ResnetMnist.Config;
using NUnit.Framework;
using ResnetMnist.Model;
using ResnetMnist.Weights;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Weights;

[TestFixture, Category("Weights")]
public sealed class LoadingTests
{
    static string Temp(string name) => Path.Combine(TestFiles.Dir, $"{TestContext.CurrentContext.Test.MethodName}-{name}");

    [Test]
    [Category("NeedsPyTorch")]
    public void StrictLoadOfPyTorchResnet18GivesItsStateDictExactly()
    {
        var pth = Temp("seed0.pth");
        Python.Run("""
            import sys, torch, torchvision
            torch.manual_seed(0)
            m = torchvision.models.resnet18()
            torch.save(m.state_dict(), sys.argv[1])
            """, pth);
        using var m = Models.resnet18();
        var report = PretrainedWeights.Load(m, pth);
        Assert.That(report.Loaded, Has.Count.EqualTo(122));
        var file = WeightsFile.ReadStateDict(pth);
        var sd = m.state_dict();
        Assert.That(sd.Keys, Is.EquivalentTo(file.Keys));
        foreach (var (k, t) in sd)
            Assert.That(t.dtype == file[k].dtype && t.Same(file[k]), $"{k} differs from the file");
        Assert.That(m.parameters().All(p => p.requires_grad), "loaded parameters must keep requires_grad");

        // The same dict as safetensors loads to the same model.
        var st = Temp("seed0.safetensors");
        Safetensors.SaveStateDict(st, file);
        using var m2 = Models.resnet18();
        PretrainedWeights.Load(m2, st);
        foreach (var (k, t) in m2.state_dict()) Assert.That(t.Same(file[k]), $"{k} differs (safetensors)");

        // A cached torchvision file is used as is (no download).
        var hub = Path.Combine(TestFiles.Dir, "hub");
        Directory.CreateDirectory(hub);
        File.Copy(pth, Path.Combine(hub, ArchSpecs.Resnet18.DefaultWeights.FileName), overwrite: true);
        Assert.That(PretrainedWeights.EnsureTorchvisionFile(hub, ArchSpecs.Resnet18.DefaultWeights), Is.EqualTo(Path.Combine(hub, ArchSpecs.Resnet18.DefaultWeights.FileName)));
    }

    [Test]
    public void TorchvisionOfflineNamesTheCacheAndTheOfflineSource()
    {
        var dir = Path.Combine(TestFiles.Dir, "empty-hub");
        // An unreachable address stands for "offline" on any machine.
        var e = Assert.Throws<WeightsFileException>(() => PretrainedWeights.EnsureTorchvisionFile(dir, ArchSpecs.Resnet18.DefaultWeights, url: "http://127.0.0.1:9/resnet18-f37072fd.pth"))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith(Path.Combine(dir, ArchSpecs.Resnet18.DefaultWeights.FileName)));
        Assert.That(e.Message, Does.Contain($"copy {ArchSpecs.Resnet18.DefaultWeights.FileName} into {dir}").And.Contain("pretrained: mlnet"));
        Assert.That(Directory.GetFiles(dir), Is.Empty, "no partial file is left behind");
    }

    [Test]
    [Category("NeedsPyTorch")]
    public void ConvertedPthLoadsInPyTorchWithOnlyFcMissing()
    {
        var sd = WeightsFile.ReadStateDict(TestFiles.MlnetPth);
        double sum = sd.Values.Sum(t => t.to_type(ScalarType.Float64).abs().sum().item<double>());
        var output = Python.Run("""
            import sys, torch, torchvision
            m = torchvision.models.resnet18()
            sd = torch.load(sys.argv[1])
            r = m.load_state_dict(sd, strict=False)
            assert sorted(r.missing_keys) == ['fc.bias', 'fc.weight'], r.missing_keys
            assert not r.unexpected_keys, r.unexpected_keys
            print(sum(float(t.double().abs().sum()) for t in sd.values()))
            """, TestFiles.MlnetPth);
        Assert.That(double.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(sum).Within(1e-9).Percent);
    }

    [Test]
    public void PthAndSafetensorsFromTheConverterHoldTheSameTensors()
    {
        var a = WeightsFile.ReadStateDict(TestFiles.MlnetPth);
        var b = WeightsFile.ReadStateDict(TestFiles.MlnetSafetensors);
        Assert.That(b.Keys, Is.EqualTo(a.Keys));
        Assert.That(a.Keys, Has.Count.EqualTo(120));
        foreach (var (k, t) in a) Assert.That(t.Same(b[k]), k);
        TestContext.Out.WriteLine($"conversion (ONNX parse + fold + .pth + .safetensors): {TestFiles.MlnetConversionSeconds:F1} s");
    }

    [TestCase(2)]
    [TestCase(4)]
    [Category("NeedsPyTorch")]
    public void PickleCallingForeignCodeIsRefusedAndNothingRuns(int protocol)
    {
        var pth = Temp("evil.pth");
        var marker = Temp("marker");
        Python.Run("""
            import sys, os, io, pickle, zipfile, torch
            path, marker, protocol = sys.argv[1], sys.argv[2], int(sys.argv[3])
            class Evil:
                def __reduce__(self):
                    return (os.system, ('touch ' + marker,))
            buf = io.BytesIO()
            torch.save({'w': torch.zeros(2)}, buf)
            src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
            with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as out:
                for info in src.infolist():
                    data = src.read(info.filename)
                    if info.filename.endswith('data.pkl'):
                        data = pickle.dumps({'w': Evil()}, protocol=protocol)
                    out.writestr(info.filename, data)
            """, pth, marker, protocol.ToString());
        using var m = Models.resnet18();
        var e = Assert.Throws<WeightsFileException>(() => PretrainedWeights.Load(m, pth))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith(pth).And.Contain("posix.system").And.Contain("refused"));
        Assert.That(File.Exists(marker), Is.False, "the marker file must not appear");
    }

    [Test]
    [Category("NeedsPyTorch")]
    public void WholePickledModelGetsTheStateDictAdvice()
    {
        var pth = Temp("whole.pth");
        Python.Run("import sys, torch, torchvision\ntorch.save(torchvision.models.resnet18(), sys.argv[1])", pth);
        var e = Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(pth))!;
        Assert.That(e.Message, Is.EqualTo($"{pth}: {WeightsFile.WholeModelMessage}"));
    }

    [TestCase(".pth")]
    [TestCase(".safetensors")]
    public void TruncatedFilesGiveClearErrors(string ext)
    {
        var source = ext == ".pth" ? TestFiles.MlnetPth : TestFiles.MlnetSafetensors;
        var bytes = File.ReadAllBytes(source);
        var path = Temp("truncated" + ext);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(path))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith(path).And.Contain("truncated"));
    }

    [Test]
    public void DirectoriesEmptyAndForeignFilesGiveClearErrors()
    {
        var dir = Temp("dir");
        Directory.CreateDirectory(dir);
        Assert.That(Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(dir))!.Message,
            Does.StartWith(dir).And.Contain("is a directory"));
        var text = Temp("notes.pth");
        File.WriteAllText(text, "hello, not weights");
        Assert.That(Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(text))!.Message,
            Does.StartWith(text).And.Contain("neither a torch.save zip file"));
        var empty = Temp("empty.safetensors");
        File.WriteAllBytes(empty, []);
        Assert.That(Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(empty))!.Message, Does.Contain("empty"));
    }

    [Test]
    public void MismatchedKeysAreReportedTogether()
    {
        var sd = WeightsFile.ReadStateDict(TestFiles.MlnetPth);
        sd.Remove("layer1.0.conv1.weight");
        sd["extra.weight"] = zeros(3);
        sd["layer2.0.bn1.bias"] = zeros(7);
        var path = Temp("mismatch.pth");
        PyTorchPickler.PickleStateDict(path, sd);
        using var m = Models.resnet18();                          // 1000 classes: fc is expected too
        var e = Assert.Throws<WeightsFileException>(() => PretrainedWeights.Load(m, path))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith(path)
            .And.Contain("missing: layer1.0.conv1.weight (expected [64, 64, 3, 3])")
            .And.Contain("missing: fc.weight (expected [1000, 512])")
            .And.Contain("unexpected: extra.weight [3]")
            .And.Contain("wrong shape: layer2.0.bn1.bias: expected [128], found [7]"));

        var report = WeightsInspector.Inspect(path, 1, 10);
        Assert.That(report.Fits, Is.False);
        Assert.That(report.Problems, Has.Count.EqualTo(3));
    }

    [Test]
    public void InspectorDescribesTheConvertedFile()
    {
        var report = WeightsInspector.Inspect(TestFiles.MlnetPth, 1, 10);
        TestContext.Out.WriteLine(report.ToString());
        Assert.That(report.Fits, Is.True);
        Assert.That(report.Tensors, Has.Count.EqualTo(120));
        Assert.That(report.ParameterCount, Is.EqualTo(11_689_512 - 513_000));
        Assert.That(report.ToString(), Does.Contain("layer4.1.bn2.running_var").And.Contain("fits resnet18(in_channels=1, num_classes=10): yes"));
        Assert.That(WeightsInspector.Inspect(TestFiles.MlnetSafetensors, 3, 1000).Problems,
            Is.EqualTo(new[] { "missing: fc.weight (expected [1000, 512])", "missing: fc.bias (expected [1000])" }));
    }

    [Test]
    public void Conv1InitDerivesOneChannelKernels()
    {
        var rgb = WeightsFile.ReadStateDict(TestFiles.MlnetPth)["conv1.weight"];
        using var sum = Models.resnet18(1, 10);
        PretrainedWeights.Load(sum, TestFiles.MlnetPth, Conv1Init.SumRgb);
        Assert.That(sum.state_dict()["conv1.weight"].allclose(rgb.sum([1], keepdim: true)));
        using var mean = Models.resnet18(1, 10);
        PretrainedWeights.Load(mean, TestFiles.MlnetPth, Conv1Init.MeanRgb);
        Assert.That(mean.state_dict()["conv1.weight"].allclose(rgb.mean([1], keepdim: true)));

        manual_seed(7);
        using var fresh = Models.resnet18(1, 10);
        var before = fresh.state_dict()["conv1.weight"].clone();
        var report = PretrainedWeights.Load(fresh, TestFiles.MlnetPth, Conv1Init.Random);
        Assert.That(fresh.state_dict()["conv1.weight"].Same(before), "random keeps the fresh conv1");
        Assert.That(report.KeptFresh, Is.EqualTo(new[] { "conv1.weight", "fc.weight", "fc.bias" }));

        using var three = PretrainedWeights.Conv1FromRgb(rgb, 3, Conv1Init.SumRgb);
        Assert.That(three.sum([1]).allclose(rgb.sum([1])), "sum-rgb for C channels keeps the summed response");
        Assert.Throws<ConfigException>(() => ConfigNames.Parse<Conv1Init>("zeros"));
    }
}
