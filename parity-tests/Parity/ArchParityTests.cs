using System.Text.Json;
using NUnit.Framework;
using TorchSharp;
using ResnetMnist.Model;
using ResnetMnist.Weights;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// resnet34 (BasicBlock [3, 4, 6, 3]) and resnet50 (Bottleneck [3, 4, 6, 3]) against torchvision, at (1 channel,
/// 10 classes) and (3, 1000): after <c>manual_seed(0)</c> every state_dict tensor bit-identical to PyTorch's (sha256 of
/// the bytes, same kernel set), in torchvision's key order; float64 forward (model built in float32, then converted;
/// eval and train mode) within 1e-10 per top-level layer. References: <c>reference/snapshots/&lt;kernel
/// set&gt;/arch_&lt;name&gt;.json</c>, written by reference/make_arch_snapshots.py.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class ArchParityTests
{
    const double Rtol64 = 1e-10, Atol64 = 1e-10;
    const long InputSeed = 1234;

    public static IEnumerable<TestCaseData> Variants()
    {
        foreach (var arch in new[] { "resnet34", "resnet50" })
            foreach (var (c, k) in new[] { (1, 10), (3, 1000) })
                yield return new TestCaseData(arch, c, k).SetArgDisplayNames(arch, $"{c}ch", $"{k}classes");
    }

    static JsonElement Variant(JsonElement file, int c, int k) => file.GetProperty("variants").GetProperty($"{c}x{k}");

    static ResNet Build(string arch, int c, int k)
    {
        manual_seed(0);
        return Models.Create(arch, c, k);
    }

    /// <summary>The snapshots' input: <c>torch.rand(2, c, 64, 64, dtype=float64, generator=Generator().manual_seed(1234))</c>.</summary>
    static Tensor Input(int c)
    {
        using var g = new Generator((ulong)InputSeed);
        return rand(new long[] { 2, c, 64, 64 }, dtype: ScalarType.Float64, generator: g);
    }

    /// <summary>Init mismatches of the C# model against one reference record set (same rule as InitParityTests).</summary>
    internal static List<string> InitMismatches(ResNet model, JsonElement init, Func<string, bool> kernelDependent, bool sameKernel)
    {
        var sd = model.state_dict();
        var refKeys = init.EnumerateObject().Select(p => p.Name).ToList();
        // TorchSharp lists parameters before buffers; the order itself is checked on ArchSpec.StateDictLayout.
        Assert.That(sd.Keys.ToList(), Is.EquivalentTo(refKeys), "state_dict keys");
        var mismatches = new List<string>();
        foreach (var (key, t) in sd)
        {
            var rec = init.GetProperty(key);
            Assert.That(t.shape, Is.EqualTo(rec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray()), key);
            if (Snapshot.Sha256(t) == rec.GetProperty("sha256").GetString()) continue;
            double sum = t.to_type(ScalarType.Float64).sum().item<double>(), expected = rec.GetProperty("sum").GetDouble();
            if (sameKernel || !kernelDependent(key) || Math.Abs(sum - expected) > 1e-6 * Math.Abs(expected) + 1e-9)
                mismatches.Add($"{key} (C# sum {sum:R}, PyTorch sum {expected:R})");
        }
        return mismatches;
    }

    /// <summary>Float64 forward, per mode and layer, against one reference; returns the worst relative difference.</summary>
    static double AssertForward(string arch, int c, int k, JsonElement variant)
    {
        using var x = Input(c);
        Snapshot.AssertClose(x, variant.GetProperty("input"), 1e-15, 1e-15, $"{arch} input (torch.rand, seed {InputSeed})");
        double worst = 0;
        foreach (var mode in new[] { "eval", "train" })
        {
            using var m = Build(arch, c, k);
            m.to(ScalarType.Float64);
            m.train(mode == "train");
            using var _g = no_grad();
            var refLayers = variant.GetProperty("forward_float64").GetProperty(mode);
            foreach (var (name, output) in m.ForwardLayers(x))
            {
                var d = Snapshot.AssertClose(output, refLayers.GetProperty(name), Rtol64, Atol64, $"{arch}({c}, {k}) float64 {mode} {name}");
                worst = Math.Max(worst, d.MaxRel);
                output.Dispose();
            }
        }
        return worst;
    }

    [TestCaseSource(nameof(Variants))]
    public void InitIsBitIdenticalToTorchvision(string arch, int c, int k)
    {
        var file = $"arch_{arch}.json";
        var variant = Variant(Snapshot.Load(file), c, k);
        using var model = Build(arch, c, k);
        Assert.That(model.state_dict().Count, Is.EqualTo(variant.GetProperty("count").GetInt32()));
        Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(variant.GetProperty("parameters").GetInt64()), "parameters");
        bool KernelDependent(string key) => Snapshot.Available
            .Select(ks => Variant(Snapshot.Load(file, ks), c, k).GetProperty("init").GetProperty(key).GetProperty("sha256").GetString())
            .Distinct().Count() > 1;
        var mismatches = InitMismatches(model, variant.GetProperty("init"), KernelDependent, Snapshot.SameKernel);
        TestContext.Out.WriteLine($"{arch}({c}, {k}): {model.state_dict().Count} tensors compared, {mismatches.Count} differ " +
            $"(C# kernel set {Snapshot.KernelSet}, reference {Snapshot.ReferenceSet})");
        Assert.That(mismatches, Is.Empty, "tensors that differ from PyTorch's init: " + string.Join(", ", mismatches));
    }

    [TestCaseSource(nameof(Variants))]
    public void Float64ForwardMatchesTorchvision(string arch, int c, int k)
    {
        double worst = AssertForward(arch, c, k, Variant(Snapshot.Load($"arch_{arch}.json"), c, k));
        TestContext.Out.WriteLine($"{arch}({c}, {k}) float64: worst relative difference {worst:E2}");
    }

    [Test]
    public void SnapshotsWereComputedWithTheKernelSetTheyAreFiledUnder()
    {
        foreach (var set in Snapshot.Available)
            foreach (var arch in new[] { "resnet34", "resnet50" })
                Assert.That(Snapshot.Load($"arch_{arch}.json", set).GetProperty("meta").GetProperty("kernel_set").GetString(), Is.EqualTo(set), $"{set}/{arch}");
    }

    /// <summary>Every architecture at (1, 10); at (3, 1000) too where a PyTorch state_dict of that shape is committed
    /// (resnet18, resnet34, resnet50; the others' ImageNet shapes are checked by parameter count in ArchRegistryTests).</summary>
    public static IEnumerable<TestCaseData> AllArchs()
    {
        foreach (var arch in ArchSpecs.Names)
            foreach (var (c, k) in new[] { (1, 10), (3, 1000) })
                if (c == 1 || arch is "resnet18" or "resnet34" or "resnet50")
                    yield return new TestCaseData(arch, c, k).SetArgDisplayNames(arch, $"{c}ch", $"{k}classes");
    }

    /// <summary><see cref="ArchSpec.StateDictLayout"/> is the built model's state_dict, key for key with shapes (as a set:
    /// TorchSharp's state_dict lists parameters before buffers; the order is checked against torchvision below), and
    /// parameters and buffers each come in the same order.</summary>
    [TestCaseSource(nameof(AllArchs))]
    public void StateDictLayoutIsTheBuiltModels(string arch, int c, int k)
    {
        var spec = ArchSpecs.Get(arch);
        using var model = Models.Create(arch, c, k);
        var built = model.state_dict().Select(kv => (kv.Key, ArchSpec.Shape(kv.Value.shape))).ToList();
        var layout = spec.StateDictLayout(c, k).Select(e => (e.Key, ArchSpec.Shape(e.Shape))).ToList();
        Assert.That(layout, Is.EquivalentTo(built));
        Assert.That(layout.Count, Is.EqualTo(built.Count));
        Assert.That(layout.Where(e => !ArchSpec.IsBuffer(e.Key)).ToList(), Is.EqualTo(model.named_parameters().Select(p => (p.name, ArchSpec.Shape(p.parameter.shape))).ToList()), "parameters in order");
        Assert.That(layout.Where(e => ArchSpec.IsBuffer(e.Key)).ToList(), Is.EqualTo(model.named_buffers().Select(b => (b.name, ArchSpec.Shape(b.buffer.shape))).ToList()), "buffers in order");
    }

    /// <summary>torchvision's key order, from the committed PyTorch state_dicts (resnet18: init.json / init_imagenet.json;
    /// architectures without an arch_ file: steps_&lt;arch&gt;.json).</summary>
    [TestCaseSource(nameof(AllArchs))]
    public void StateDictLayoutIsInTorchvisionsOrder(string arch, int c, int k)
    {
        var init = arch == "resnet18"
            ? Snapshot.Load(c == 1 ? "init.json" : "init_imagenet.json").GetProperty("tensors")
            : arch is "resnet34" or "resnet50" ? Variant(Snapshot.Load($"arch_{arch}.json"), c, k).GetProperty("init")
            : Snapshot.Load($"steps_{arch}.json").GetProperty("init");
        var torchvision = init.EnumerateObject()
            .Select(p => (p.Name, ArchSpec.Shape(p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray()))).ToList();
        var layout = ArchSpecs.Get(arch).StateDictLayout(c, k).Select(e => (e.Key, ArchSpec.Shape(e.Shape))).ToList();
        Assert.That(layout, Is.EqualTo(torchvision));
    }

    [TestCase("resnet18", 11_689_512L)]
    [TestCase("resnet34", 21_797_672L)]
    [TestCase("resnet50", 25_557_032L)]
    public void ImageNetShapedParameterCount(string arch, long expected)
    {
        using var model = Models.Create(arch, 3, 1000);
        Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(expected));
        Assert.That(ArchSpecs.Get(arch).StateDictLayout().Where(e => !ArchSpec.IsBuffer(e.Key))
            .Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b)), Is.EqualTo(expected), "layout");
    }

    [Test]
    public void Resnet50Spec()
    {
        var spec = ArchSpecs.Resnet50;
        Assert.That(spec.Block, Is.SameAs(Bottleneck.Type));
        Assert.That(spec.Features, Is.EqualTo(2048));
        Assert.That(spec.DefaultWeights.FileName, Is.EqualTo("resnet50-0676ba61.pth"));
        Assert.That(spec.DefaultWeights.Sha256Prefix, Is.EqualTo("0676ba61"));
        Assert.That(spec.FindWeights("IMAGENET1K_V2")!.Transforms.ResizeSize, Is.EqualTo(232));
    }

    /// <summary>The reference regenerated live with this process's kernel set, compared like the committed one.</summary>
    [TestCaseSource(nameof(Variants)), Category("NeedsPyTorch")]
    public void LiveTorchvisionAgrees(string arch, int c, int k)
    {
        var live = LiveSnapshot(arch);
        Assert.That(live.GetProperty("meta").GetProperty("kernel_set").GetString(), Is.EqualTo(Snapshot.KernelSet));
        var variant = Variant(live, c, k);
        using (var model = Build(arch, c, k))
        {
            var mismatches = InitMismatches(model, variant.GetProperty("init"), _ => true, sameKernel: true);
            Assert.That(mismatches, Is.Empty, "tensors that differ from live PyTorch's init: " + string.Join(", ", mismatches));
        }
        double worst = AssertForward(arch, c, k, variant);
        TestContext.Out.WriteLine($"live {arch}({c}, {k}) float64: worst relative difference {worst:E2}");
    }

    static readonly Dictionary<string, JsonElement> Live = new();

    static JsonElement LiveSnapshot(string arch)
    {
        lock (Live)
        {
            if (Live.TryGetValue(arch, out var e)) return e;
            using var dir = new TempDir();
            Python.Run("""
                import os, subprocess, sys
                sys.path.insert(0, os.path.join(sys.argv[1], "reference"))
                import make_snapshots as ms
                ks, out, arch = sys.argv[2], sys.argv[3], sys.argv[4]
                script = os.path.join(sys.argv[1], "reference", "make_arch_snapshots.py")
                sys.exit(subprocess.call([sys.executable, script, "--kernel-set", ks, "--out", out, "--arch", arch], env=ms.kernel_env(ks)))
                """, Repo.Path(), Snapshot.KernelSet, dir.Path, arch);
            e = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, $"arch_{arch}.json"))).RootElement.Clone();
            Live[arch] = e;
            return e;
        }
    }

    /// <summary>
    /// A resnet50 state_dict saved by real PyTorch (<c>torch.save(torchvision.models.resnet50().state_dict())</c>, seed 5,
    /// BN running statistics made non-trivial) loads into the C# resnet50 as identical tensors, and both give the same
    /// float64 eval-mode logits. The 100 MB file lives in a temp folder only.
    /// </summary>
    [Test, Category("NeedsPyTorch"), Category("Weights")]
    public void Resnet50StateDictFromPyTorchLoadsExactly()
    {
        using var dir = new TempDir();
        var pth = dir.Sub("resnet50.pth");
        var logitsFile = dir.Sub("logits.json");
        Python.Run("""
            import json, sys, torch, torchvision
            torch.manual_seed(5)
            m = torchvision.models.resnet50()
            m.train()
            with torch.no_grad():
                m(torch.rand(4, 3, 64, 64))          # running statistics that are not 0 and 1
            torch.save(m.state_dict(), sys.argv[1])
            m = m.to(torch.float64).eval()
            g = torch.Generator().manual_seed(1234)
            x = torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
            with torch.no_grad():
                y = m(x)
            json.dump({"logits": y.reshape(-1).tolist()}, open(sys.argv[2], "w"))
            """, pth, logitsFile);
        using var m = Models.resnet50();
        var report = PretrainedWeights.Load(m, pth);
        Assert.That(report.Loaded, Has.Count.EqualTo(ArchSpecs.Resnet50.StateDictLayout().Count));
        var file = WeightsFile.ReadStateDict(pth);
        try
        {
            var sd = m.state_dict();
            Assert.That(sd.Keys.ToList(), Is.EquivalentTo(file.Keys.ToList()), "keys");
            Assert.That(file.Keys.ToList(), Is.EqualTo(ArchSpecs.Resnet50.StateDictLayout().Select(e => e.Key).ToList()), "the file's keys are in StateDictLayout's order");
            foreach (var (key, t) in sd)
                Assert.That(t.dtype == file[key].dtype && t.shape.SequenceEqual(file[key].shape) && Snapshot.Sha256(t) == Snapshot.Sha256(file[key]),
                    $"{key} differs from the file");
        }
        finally { foreach (var t in file.Values) t.Dispose(); }

        m.to(ScalarType.Float64);
        m.eval();
        using var x = Input(3);
        using var _g = no_grad();
        using var y = m.forward(x);
        var actual = y.reshape(-1).data<double>().ToArray();
        var expected = JsonDocument.Parse(File.ReadAllText(logitsFile)).RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        double worstRel = 0, worstAbs = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            worstAbs = Math.Max(worstAbs, d);
            worstRel = Math.Max(worstRel, d / Math.Max(Math.Abs(expected[i]), 1e-30));
            Assert.That(d, Is.LessThanOrEqualTo(Atol64 + Rtol64 * Math.Abs(expected[i])), $"logit {i}: C# {actual[i]:R}, PyTorch {expected[i]:R}");
        }
        TestContext.Out.WriteLine($"resnet50 from a PyTorch state_dict, float64 logits: max abs diff {worstAbs:E2}, max rel diff {worstRel:E2}");
    }

    /// <summary>
    /// The parity command's check runs for the new architectures: reference/resnet_mnist.py builds
    /// <c>torchvision.models.&lt;model.arch&gt;()</c> from the config it is given, and the tool's model matches it
    /// (init bit-exact, 2 float64 SGD steps on 16 real digits within the check's own float64 bounds).
    /// </summary>
    [TestCase("resnet34"), TestCase("resnet50"), TestCase("resnext50_32x4d"), Category("NeedsPyTorch")]
    public void ParityCheckRunsTheReferenceWithModelArch(string arch)
    {
        Python.RequireTorch();
        var cfg = ResnetMnist.Config.ConfigLoader.Load(Repo.Path("reference", "configs", "train-sgd-float64.yaml"), [$"model.arch={arch}"]);
        Assert.That(ResnetMnist.Parity.ParityCheck.Unsupported(cfg), Is.Null);
        var reference = ResnetMnist.Parity.ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), Python.Exe);
        using var tmp = new TempDir();
        var report = ResnetMnist.Parity.ParityCheck.Run(cfg, 2, ResnetMnist.Config.DtypeKind.Float64, reference, Path.Combine(tmp.Path, "reference"));
        TestContext.Out.WriteLine($"{arch}: worst relative loss difference {report.WorstRelativeLossDifference:E2}, init tensors differing {report.InitTensorsDiffering}");
        Assert.That(report.Failures, Is.Empty);
        Assert.That(report.Passed, Is.True);
        Assert.That(report.InitTensorsDiffering, Is.Zero);
        Assert.That(report.WorstRelativeLossDifference, Is.LessThanOrEqualTo(1e-9));
    }
}
