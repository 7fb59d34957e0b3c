using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Model;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using TrainedRun = ResnetMnist.ParityTests.Robustness.TrainedRun;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>
/// Every .pt the tool writes records its model (arch, in_channels, num_classes, dataset) in the state_dict's pickle
/// metadata (<c>_metadata["resnet_mnist"]</c>) and in the JSON beside it; commands given a bare .pt use that record.
/// </summary>
[TestFixture, Category("Tool")]
public sealed class CheckpointModelTests
{
    static readonly CheckpointModel Cifar34 = new("resnet34", 3, 10, "cifar10", CheckpointModel.CurrentVersion);

    [Test]
    public void MetadataRoundTripsThroughTheLibrary()
    {
        var dir = TempDir.New("meta-roundtrip");
        var record = new CheckpointModel("resnet18", 3, 7, "cifar10", "9.9.9");
        using var model = Models.resnet18(3, 7);
        var with = Path.Combine(dir, "with.pt");
        var without = Path.Combine(dir, "without.pt");
        File.WriteAllBytes(with, CheckpointStore.WeightsBytes(model, record));
        File.WriteAllBytes(without, CheckpointStore.WeightsBytes(model));

        var archive = TorchArchive.Read(with);
        Assert.That(archive.Summary.Metadata!.Keys, Is.EqualTo(new[] { CheckpointModel.MetadataKey }), "only our key: no per-module entries");
        Assert.That(CheckpointModel.FromArchive(archive), Is.EqualTo(record));
        Assert.That(CheckpointModel.Find(with), Is.EqualTo((record, "the file's metadata")));
        Assert.That(CheckpointModel.FromArchive(TorchArchive.Read(without)), Is.Null);
        Assert.That(CheckpointModel.Find(without), Is.Null);

        // The layout is PyBridge's (one folder, data.pkl + data/N + version), the tensors are the same, and the
        // file still loads strictly into the model through the project's reader.
        using (var zip = System.IO.Compression.ZipFile.OpenRead(with))
        using (var plain = System.IO.Compression.ZipFile.OpenRead(without))
            Assert.That(zip.Entries.Select(e => e.FullName), Is.EqualTo(plain.Entries.Select(e => e.FullName)));
        Assert.That(WeightsFile.ReadIndex(with).Select(e => (e.Key, string.Join(",", e.Shape))),
            Is.EqualTo(WeightsFile.ReadIndex(without).Select(e => (e.Key, string.Join(",", e.Shape)))));
        using var loaded = Models.resnet18(3, 7);
        CheckpointStore.LoadWeights(loaded, with);
        var a = model.state_dict();
        foreach (var (key, t) in loaded.state_dict())
            Assert.That(t.equal(a[key]).all().item<bool>(), Is.True, key);

        // The companion JSON: the model field of last.json/best.json, read beside a .pt without metadata.
        var bare = Path.Combine(dir, "bare.pt");
        File.Copy(without, bare);
        File.WriteAllText(Path.Combine(dir, "bare.json"), JsonSerializer.Serialize(new { model = record, epoch = 1 },
            new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        Assert.That(CheckpointModel.Find(bare), Is.EqualTo((record, "bare.json")));
        File.WriteAllText(Path.Combine(dir, "bare.json"), """{"model": {"arch": "resnet99", "in_channels": 3, "num_classes": 7, "dataset": "mnist"}}""");
        Assert.That(() => CheckpointModel.Find(bare), Throws.TypeOf<WeightsFileException>().With.Message.Contains("model.arch: 'resnet99'"));
    }

    [Test]
    public void TrainingWritesTheRecordInEveryCheckpointFile()
    {
        var ck = Path.Combine(TrainedRun.Dir, "checkpoints");
        var expected = new CheckpointModel("resnet18", 1, 10, "mnist", CheckpointModel.CurrentVersion);
        foreach (var pt in new[] { "last.pt", "best.pt" })
            Assert.That(CheckpointModel.FromArchive(TorchArchive.Read(Path.Combine(ck, pt))), Is.EqualTo(expected), pt);
        Assert.That(CheckpointModel.FromCompanionJson(Path.Combine(ck, "last.json")), Is.EqualTo(expected));
        Assert.That(CheckpointModel.FromCompanionJson(Path.Combine(ck, "best.json")), Is.EqualTo(expected));
        using var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(ck, "best.json")));
        Assert.That(best.RootElement.GetProperty("epoch").GetInt32(), Is.EqualTo(1));
        Assert.That(best.RootElement.GetProperty("test_accuracy").GetDouble(), Is.InRange(0.0, 100.0));
        // last.json without the model field (written before it was recorded) still resumes.
        var state = new CheckpointStore(ck).ReadState();
        Assert.That(state.Model, Is.EqualTo(expected));
    }

    [Test]
    public void OldLastJsonWithoutAModelIsStillReadable()
    {
        var run = TrainedRun.CopyTo(TempDir.New("meta-oldjson"));
        var ck = Path.Combine(run, "checkpoints");
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(ck, "last.json")))!.AsObject();
        Assert.That(node.Remove("model"), Is.True);
        File.WriteAllText(Path.Combine(ck, "last.json"), node.ToJsonString());
        Assert.That(new CheckpointStore(ck).ReadState().Model, Is.Null);
        Assert.That(CheckpointModel.FromCompanionJson(Path.Combine(ck, "last.json")), Is.Null);
    }

    /// <summary>
    /// A CIFAR-10 resnet34 run; its best.pt copied alone (no config.yaml, no JSON) is inspected and evaluated as a
    /// resnet34 on CIFAR-10, which its shapes alone could not say (the dataset); a config for another model is refused.
    /// </summary>
    [Test]
    public void BareBestPtOfACifar10Resnet34RunIsInspectedAndEvaluatedAsThatModel()
    {
        var dir = TempDir.New("meta-cifar34");
        var fixture = Repo.Path("parity-tests", "data", "cifar10-fixture", "p2");
        var cfg = Tool.WriteConfig(dir, $$"""
            seed: 1
            threads: 2
            model: {arch: resnet34}
            data: {dataset: cifar10, root: '{{fixture}}', train_limit: 32, test_limit: 32}
            train: {epochs: 1, batch_size: 32, eval_batch_size: 32}
            """);
        var run = Path.Combine(dir, "run");
        var t = Tool.Run(dir, ["train", cfg, "--out", run]);
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        Assert.That(CheckpointModel.FromCompanionJson(Path.Combine(run, "checkpoints", "best.json")), Is.EqualTo(Cifar34));

        var bareDir = TempDir.New("meta-cifar34-bare");   // no config.yaml beside it or above it
        var pt = Path.Combine(bareDir, "model.pt");
        File.Copy(Path.Combine(run, "checkpoints", "best.pt"), pt);

        var w = Tool.Run(bareDir, ["weights", "inspect", pt, "--json"]);
        Assert.That(w.ExitCode, Is.EqualTo(0), w.ToString());
        using (var doc = JsonDocument.Parse(w.Stdout))
        {
            var e = doc.RootElement;
            Assert.That((e.GetProperty("arch").GetString(), e.GetProperty("in_channels").GetInt32(), e.GetProperty("num_classes").GetInt32(),
                e.GetProperty("inferred").GetBoolean(), e.GetProperty("fits").GetBoolean()), Is.EqualTo(("resnet34", 3, 10, false, true)));
            var m = e.GetProperty("model");
            Assert.That((m.GetProperty("arch").GetString(), m.GetProperty("dataset").GetString(), e.GetProperty("model_source").GetString()),
                Is.EqualTo(("resnet34", "cifar10", "the file's metadata")));
        }
        var text = Tool.Run(bareDir, ["weights", "inspect", pt]);
        Assert.That(text.Stdout, Does.Contain("recorded model (the file's metadata): resnet34, in_channels 3, num_classes 10, dataset cifar10")
            .And.Contain("fits resnet34(in_channels=3, num_classes=10) as a checkpoint (the recorded model): yes"), text.ToString());

        var ev = Tool.Run(bareDir, ["evaluate", pt, "--json", "--set", $"data.root={fixture}", "--set", "data.test_limit=16"]);
        Assert.That(ev.ExitCode, Is.EqualTo(0), ev.ToString());
        Assert.That(ev.Stderr, Does.Contain("model recorded in the file's metadata: resnet34, in_channels 3, num_classes 10, dataset cifar10"), ev.ToString());
        using (var doc = JsonDocument.Parse(ev.Stdout))
            Assert.That((doc.RootElement.GetProperty("arch").GetString(), doc.RootElement.GetProperty("dataset").GetString(),
                doc.RootElement.GetProperty("test_images").GetInt32()), Is.EqualTo(("resnet34", "cifar10", 16)));

        // A config that contradicts the record: one clear line, exit code 2.
        var other = Tool.WriteConfig(bareDir, $"data: {{dataset: cifar10, root: '{fixture}'}}\n", "resnet18.yaml");
        Tool.AssertOneErrorLine(Tool.Run(bareDir, ["evaluate", pt, "--config", other]), 2,
            $"{pt}: model.arch is resnet18 in {other} but resnet34 in the checkpoint (the file's metadata)");
        Tool.AssertOneErrorLine(Tool.Run(bareDir, ["weights", "inspect", pt, "--config", other]), 2,
            $"{pt}: model.arch is resnet18 in {other} but resnet34 in the checkpoint (the file's metadata)");
        Tool.AssertOneErrorLine(Tool.Run(bareDir, ["predict", pt, "--set", "model.num_classes=5", "x.png"]), 2,
            $"{pt}: model.num_classes is 5 with --set but 10 in the checkpoint (the file's metadata)");
    }

    /// <summary>A .pt without metadata (PyTorch's own, or an older run's) falls back to the JSON beside it, then to its shapes.</summary>
    [Test]
    public void WithoutMetadataTheCompanionJsonThenTheShapesSayTheModel()
    {
        var dir = TempDir.New("meta-fallback");
        using var model = Models.resnet34(3, 10);
        var pt = Path.Combine(dir, "best.pt");
        File.WriteAllBytes(pt, CheckpointStore.WeightsBytes(model));
        var inferred = Tool.Run(dir, ["weights", "inspect", pt, "--json"]);
        Assert.That(inferred.ExitCode, Is.EqualTo(0), inferred.ToString());
        using (var doc = JsonDocument.Parse(inferred.Stdout))
            Assert.That((doc.RootElement.GetProperty("inferred").GetBoolean(), doc.RootElement.GetProperty("model").ValueKind), Is.EqualTo((true, JsonValueKind.Null)));

        File.WriteAllText(Path.Combine(dir, "best.json"), JsonSerializer.Serialize(new { model = Cifar34, epoch = 3, test_accuracy = 50.0 },
            new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        var recorded = Tool.Run(dir, ["weights", "inspect", pt, "--json"]);
        Assert.That(recorded.ExitCode, Is.EqualTo(0), recorded.ToString());
        using (var doc = JsonDocument.Parse(recorded.Stdout))
            Assert.That((doc.RootElement.GetProperty("inferred").GetBoolean(), doc.RootElement.GetProperty("model_source").GetString(),
                doc.RootElement.GetProperty("model").GetProperty("dataset").GetString()), Is.EqualTo((false, "best.json", "cifar10")));
    }

    /// <summary>
    /// Real PyTorch: <c>torch.load</c> of the tool's last.pt shows <c>sd._metadata["resnet_mnist"]</c> and
    /// <c>load_state_dict</c> (strict) into the reference program's model still works (BatchNorm without per-module versions).
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void PyTorchSeesTheMetadataAndStillLoadsTheStateDict()
    {
        Python.RequireTorch();
        var lastPt = Path.Combine(TrainedRun.Dir, "checkpoints", "last.pt");
        var script = """
            import sys, json, torch
            sys.path.insert(0, sys.argv[2])
            import resnet_mnist
            sd = torch.load(sys.argv[1], map_location="cpu")
            md = sd._metadata
            rec = dict(md["resnet_mnist"])
            m = resnet_mnist.build_model(in_channels=rec["in_channels"], num_classes=rec["num_classes"], arch=rec["arch"])
            result = m.load_state_dict(sd)  # strict
            assert not result.missing_keys and not result.unexpected_keys, result
            try:
                wo = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
                weights_only = dict(wo._metadata["resnet_mnist"]) == rec
            except TypeError:
                weights_only = None  # a torch without weights_only
            print(json.dumps({"keys": list(md.keys()), "rec": rec, "type": type(sd).__name__, "weights_only": weights_only}))
            """;
        var output = Python.Run(script, lastPt, Repo.Path("reference"));
        using var doc = JsonDocument.Parse(output.Trim().Split('\n').Last());
        var e = doc.RootElement;
        Assert.That(e.GetProperty("keys").EnumerateArray().Select(k => k.GetString()), Is.EqualTo(new[] { "resnet_mnist" }));
        Assert.That(e.GetProperty("type").GetString(), Is.EqualTo("OrderedDict"));
        var rec = e.GetProperty("rec");
        Assert.That((rec.GetProperty("arch").GetString(), rec.GetProperty("in_channels").GetInt32(), rec.GetProperty("num_classes").GetInt32(),
            rec.GetProperty("dataset").GetString(), rec.GetProperty("tool_version").GetString()),
            Is.EqualTo(("resnet18", 1, 10, "mnist", CheckpointModel.CurrentVersion)));
        if (e.GetProperty("weights_only").ValueKind != JsonValueKind.Null)
            Assert.That(e.GetProperty("weights_only").GetBoolean(), Is.True, "torch.load(weights_only=True) reads it too");
    }
}
