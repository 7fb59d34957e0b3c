using System.Text.Json.Nodes;
using NUnit.Framework;
using ResnetMnist.Data;
using ResnetMnist.Export;
using ResnetMnist.Model;
using ResnetMnist.Outputs;
using ResnetMnist.Parity;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using TorchSharp.PyBridge;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// Text read from files reaches the terminal escaped or is refused, and files that used to end in "unexpected
/// failure" are refused in one line naming the file and the problem. Every input is crafted here.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class FileTextAndFailureTests
{
    const string Hostile = "\u001b[2J\u001b]0;pwned\u0007\nerror: injected";

    /// <summary>Nothing from a hostile file reached the terminal raw: no ESC, no BEL, no injected line.</summary>
    static void NothingRaw(ToolResult r)
    {
        // Ordinal, character by character: a culture-aware "contains" ignores control characters and finds them anywhere.
        Assert.That((r.Stdout + r.Stderr).Any(c => c is '\u001b' or '\u0007'), Is.False, r.ToString());
        Assert.That((r.Stdout + r.Stderr).Split('\n'), Has.None.StartWith("error: injected"), r.ToString());
    }

    /// <summary>A resnet18(1, 10) state_dict file, with <paramref name="record"/> in its metadata and <paramref name="change"/> applied first.</summary>
    static void WriteCheckpoint(string path, CheckpointModel? record = null, Action<ResNet>? change = null, int numClasses = 10)
    {
        using var model = Models.resnet18(1, numClasses);
        using (no_grad()) change?.Invoke(model);
        File.WriteAllBytes(path, CheckpointStore.WeightsBytes(model, record));
    }

    // ---- text from files ----

    [Test]
    public void A_tool_version_with_escape_codes_in_a_checkpoint_is_refused_in_one_escaped_line()
    {
        var dir = TempDir.New("toolversion");
        var pt = Path.Combine(dir, "forged.pt");
        WriteCheckpoint(pt, new CheckpointModel("resnet18", 1, 10, "mnist", Hostile));
        var r = Tool.Run(dir, ["evaluate", pt]);
        Tool.AssertOneErrorLine(r, 2, "forged.pt: _metadata[\"resnet_mnist\"]: tool_version: '\\x1b[2J\\x1b]0;pwned\\x07");
        NothingRaw(r);
    }

    [Test]
    public void An_osc52_tool_version_in_best_json_is_refused_by_predict_in_one_escaped_line()
    {
        var dir = TempDir.New("osc52");
        var pt = Path.Combine(dir, "best.pt");
        WriteCheckpoint(pt);
        File.WriteAllText(Path.Combine(dir, "best.json"),
            """{"model":{"arch":"resnet18","in_channels":1,"num_classes":10,"dataset":"mnist","tool_version":"\u001b]52;c;ZWNobyBwd25lZA==\u0007"}}""");
        var r = Tool.Run(dir, ["predict", pt, Path.Combine(dir, "none.png")]);
        Tool.AssertOneErrorLine(r, 2, "best.json: model.tool_version: '\\x1b]52;c;ZWNobyBwd25lZA==\\x07' holds characters a version does not");
        NothingRaw(r);
    }

    [Test]
    public void Weights_inspect_shows_a_key_with_escape_codes_and_a_newline_escaped_on_its_own_line()
    {
        var dir = TempDir.New("inspectkey");
        const string key = "w\u001b]52;c;AAAA\u0007\nerror: injected";
        var pth = Zip(Path.Combine(dir, "keys.pth"), ("archive/data.pkl", StateDictPickle((key, "0", 4, 0, [2, 2], [2, 1]))),
            ("archive/data/0", SmallStorage()), ("archive/version", "3\n"u8.ToArray()));
        var r = Tool.Run(dir, ["weights", "inspect", pth]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString()); // it does not fit resnet18: the report says why, on stdout
        Assert.That(r.Stdout, Does.Contain("w\\x1b]52;c;AAAA\\x07\\nerror: injected"), r.ToString());
        NothingRaw(r);
    }

    [Test]
    public void Normal_output_escapes_config_values_echoed_back()
    {
        var dir = TempDir.New("echo");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var r = Tool.Run(dir, ["config", "show", cfg, "--set", "data.root=x\u001b]0;t\u0007\u202ey"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout, Does.Contain("x\\x1b]0;t\\x07\\u202ey"), r.ToString());
        Assert.That(r.Stdout.Any(c => c is '\u001b' or '\u0007' or '\u202e'), Is.False, r.ToString());
    }

    [Test]
    public void A_recorded_num_classes_of_1_names_the_checkpoint_and_its_record_not_a_set()
    {
        var dir = TempDir.New("oneclass");
        var pt = Path.Combine(dir, "one.pt");
        WriteCheckpoint(pt, new CheckpointModel("resnet18", 1, 1, "mnist", "0.1.0"), numClasses: 1);
        var r = Tool.Run(dir, ["evaluate", pt]);
        Tool.AssertOneErrorLine(r, 2, "one.pt: _metadata[\"resnet_mnist\"]: num_classes: 1; allowed: 2 to 1000 (as model.num_classes)");
        Assert.That(r.Stderr, Does.Not.Contain("--set"), r.ToString());

        var bare = Path.Combine(dir, "bare.pt");
        WriteCheckpoint(bare, numClasses: 1);
        File.WriteAllText(Path.Combine(dir, "bare.json"),
            """{"model":{"arch":"resnet18","in_channels":1,"num_classes":1,"dataset":"mnist","tool_version":"0.1.0"}}""");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["evaluate", bare]), 2, "bare.json: model.num_classes: 1; allowed: 2 to 1000");
    }

    [Test]
    public void A_recorded_model_whose_channels_contradict_its_dataset_is_refused()
    {
        Assert.That(new CheckpointModel("resnet18", 3, 10, "mnist", "0.1.0").Problem(),
            Is.EqualTo("in_channels: 3, but dataset mnist has 1-channel images; allowed: 1"));
        Assert.That(new CheckpointModel("resnet18", 1, 10, "mnist", "0.1.0-rc.1+abc").Problem(), Is.Null);
        Assert.That(new CheckpointModel("resnet18", 1, 10, "mnist", "").Problem(), Is.Null, "files written before the version was recorded");
    }

    // ---- state_dict entries that are not tensors, non-finite weights ----

    [TestCase("an int", TestName = "conv1.weight is an int")]
    [TestCase("None", TestName = "conv1.weight is None")]
    public void Evaluate_and_export_refuse_a_state_dict_entry_that_is_not_a_tensor(string kind)
    {
        var dir = TempDir.New("notatensor");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var w = new PickleWriter();
        w.Global("collections", "OrderedDict").Op((byte)')').Op((byte)'R').Mark().Str("conv1.weight");
        if (kind == "None") w.Op((byte)'N'); else w.Int(3);
        Zip(Path.Combine(run, "checkpoints", "best.pt"), ("archive/data.pkl", w.Op((byte)'u').Stop()), ("archive/version", "3\n"u8.ToArray()));
        var expected = $"best.pt: conv1.weight: is {kind}, not a tensor: not a state_dict";
        Tool.AssertOneErrorLine(Tool.Run(dir, ["evaluate", run]), 2, expected);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", run, "--out", Path.Combine(dir, "m.onnx")]), 2, expected);
        Assert.That(File.Exists(Path.Combine(dir, "m.onnx")), Is.False);
    }

    [Test]
    public void Evaluate_predict_and_export_refuse_nan_weights_naming_the_file_and_the_tensor()
    {
        var dir = TempDir.New("nanweights");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var best = Path.Combine(run, "checkpoints", "best.pt");
        WriteCheckpoint(best, CheckpointModel.FromArchive(TorchArchive.Read(TrainedRun.BestPt)),
            m => m.state_dict()["layer3.1.bn2.running_var"][5].fill_(double.PositiveInfinity));
        const string expected = "best.pt: layer3.1.bn2.running_var holds NaN or infinite values";
        Tool.AssertOneErrorLine(Tool.Run(dir, ["evaluate", run]), 2, expected);
        var png = Path.Combine(dir, "digit.png");
        ToolContractTests.WritePng(png, 28, 28);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["predict", run, png]), 2, expected);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", run, "--out", Path.Combine(dir, "m.onnx")]), 2, expected);
        Assert.That(File.Exists(Path.Combine(dir, "m.onnx")), Is.False, "no model with an infinite weight was exported");
        Assert.That(File.Exists(Path.Combine(run, "eval.json")), Is.False, "no eval.json for a refused checkpoint");
    }

    [Test]
    public void Onnx_export_itself_refuses_non_finite_weights()
    {
        var dir = TempDir.New("onnxnan");
        using var model = Models.resnet18(1, 10);
        using (no_grad()) model.state_dict()["fc.bias"][3].fill_(double.NaN);
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.Write(model, Path.Combine(dir, "m.onnx"), 28, 28))!;
        Assert.That(e.Message, Does.StartWith("fc.bias holds NaN or infinite values"));
        Assert.That(Directory.GetFiles(dir), Is.Empty);
    }

    // ---- init_from dtypes and values ----

    static string StateDictFile(string dir, string name, Func<string, Tensor, Tensor> change)
    {
        using var source = Models.resnet18(1, 10);
        using var _ = no_grad();
        var sd = source.state_dict().ToDictionary(kv => kv.Key, kv => change(kv.Key, kv.Value));
        var path = Path.Combine(dir, name);
        using (var f = File.Create(path)) PyTorchPickler.PickleStateDict(f, sd);
        return path;
    }

    [Test]
    public void Init_from_refuses_integer_and_bool_weights_and_nan_naming_the_key()
    {
        var dir = TempDir.New("initdtype");
        foreach (var (name, change, expected) in new (string, Func<string, Tensor, Tensor>, string)[]
        {
            ("int.pt", (k, t) => k == "layer1.0.conv1.weight" ? t.to_type(ScalarType.Int64) : t,
                "int.pt: layer1.0.conv1.weight: is int64 but the model's layer1.0.conv1.weight is float32; allowed: a floating-point tensor"),
            ("bool.pt", (k, t) => k == "bn1.weight" ? t.to_type(ScalarType.Bool) : t,
                "bool.pt: bn1.weight: is bool but the model's bn1.weight is float32"),
            ("nan.pt", (k, t) => k == "layer2.0.bn1.bias" ? t.fill_(double.NaN) : t,
                "nan.pt: layer2.0.bn1.bias: holds NaN or infinite values; allowed: finite values; nothing was copied"),
        })
        {
            var file = StateDictFile(dir, name, change);
            using var model = Models.resnet18(1, 10);
            var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var e = Assert.Throws<WeightsFileException>(() => WarmStart.Load(model, file))!;
            Assert.That(e.Message, Does.StartWith(Path.Combine(dir, expected)), name);
            foreach (var (key, t) in model.state_dict())
                Assert.That(t.eq(before[key]).all().item<bool>(), $"{name}: {key} changed although the file was refused");
        }
    }

    [Test]
    public void Init_from_converts_float16_and_float64_as_load_state_dict_does_and_says_so()
    {
        var dir = TempDir.New("initfloat");
        var file = StateDictFile(dir, "mixed.pt", (k, t) => k switch
        {
            "conv1.weight" => t.to_type(ScalarType.Float16),
            "fc.weight" => t.to_type(ScalarType.Float64),
            _ => t,
        });
        var source = WeightsFile.ReadStateDict(file);
        using var model = Models.resnet18(1, 10);
        var report = WarmStart.Load(model, file);
        Assert.That(report.Converted, Is.EqualTo(new[] { "conv1.weight float16 → float32", "fc.weight float64 → float32" }));
        Assert.That(report.ToString(), Does.EndWith("; converted to the model's dtype: conv1.weight float16 → float32, fc.weight float64 → float32"));
        Assert.That(model.state_dict()["conv1.weight"].eq(source["conv1.weight"].to_type(ScalarType.Float32)).all().item<bool>(), "float16 values widened exactly");
        Assert.That(model.state_dict()["fc.weight"].eq(source["fc.weight"].to_type(ScalarType.Float32)).all().item<bool>(), "float64 values rounded as copy_ rounds them");
    }

    // ---- files the tool writes or reads back ----

    [Test, System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Evaluate_prints_its_results_and_warns_when_eval_json_cannot_be_written()
    {
        var dir = TempDir.New("readonly");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        // A read-only folder; root ignores the mode bits, so there eval.json is also taken by a folder.
        if (Environment.UserName == "root") Directory.CreateDirectory(Path.Combine(run, "eval.json"));
        File.SetUnixFileMode(run, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        try
        {
            var r = Tool.Run(dir, ["evaluate", run]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
            Assert.That(r.Stdout, Does.Contain("test images: 64, test loss: ").And.Contain("test accuracy: "), r.ToString());
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Has.Length.EqualTo(1), r.ToString());
            Assert.That(lines[0], Does.StartWith($"warning: {Path.Combine(run, "eval.json")}: could not write").And.EndWith("the results above were printed but not saved"));
            var json = Tool.Run(dir, ["evaluate", run, "--json"]);
            Assert.That(JsonNode.Parse(json.Stdout)!["test_images"]!.GetValue<int>(), Is.EqualTo(64), json.ToString());
        }
        finally { File.SetUnixFileMode(run, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); }
    }

    [Test]
    public void A_truncated_parity_json_is_named_whether_the_reference_wrote_it_or_it_is_read_back()
    {
        var dir = TempDir.New("parityjson");
        var file = Path.Combine(dir, "parity.json");
        File.WriteAllText(file, """{"losses": [2.30, 2.29], "lrs": [0.01, 0.""");
        var e = Assert.Throws<ReferenceFailedException>(() => ParityCheck.ReadReferenceLosses(file))!;
        Assert.That(e.Message, Does.StartWith($"{file}: the reference's output is truncated or corrupt ("));
        var b = Assert.Throws<BadInputException>(() => ParityFiles.Read(file))!;
        Assert.That(b.Message, Does.StartWith($"{file}: truncated or corrupt parity report ("));
        File.WriteAllText(file, """{"losses": [2.30], "lrs": "x"}""");
        Assert.That(Assert.Throws<ReferenceFailedException>(() => ParityCheck.ReadReferenceLosses(file))!.Message, Does.StartWith(file));
    }

    [Test]
    public void Resume_with_a_garbage_steps_csv_names_the_file_and_line_and_rewrites_metrics_csv_from_the_checkpoint()
    {
        var dir = TempDir.New("metricscsv");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var metrics = Path.Combine(run, "metrics.csv");
        var kept = File.ReadAllText(metrics);
        File.AppendAllText(metrics, "garbage,1,2\n");
        var e = Assert.Throws<BadInputException>(() => RunDirectory.ReadMetrics(metrics))!;
        Assert.That(e.Message, Does.StartWith($"{metrics}:3: not a line this tool writes"));

        // steps.csv is the step log a resume continues: a line that is not one of its own is refused, naming it.
        var steps = Path.Combine(run, "steps.csv");
        File.AppendAllText(steps, "1.5,1,2.3,0.001\n");
        Assert.That(Assert.Throws<BadInputException>(() => RunDirectory.ReadSteps(steps))!.Message, Does.Contain("steps.csv:").And.Contain("step and epoch must be integers"));
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run, "--set", "train.epochs=2"]), 2, "steps.csv:4: not a line this tool writes (step and epoch must be integers)");

        // The epochs' history is the checkpoint's own (last.json): a resume rewrites metrics.csv from it, garbage gone.
        File.WriteAllText(steps, string.Join("\n", File.ReadAllLines(steps)[..^1]) + "\n");
        var r = Tool.Run(dir, ["train", "--resume", run, "--set", "train.epochs=2"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var lines = File.ReadAllLines(metrics);
        Assert.That(lines, Has.Length.EqualTo(3), "header, epoch 1 from the checkpoint, epoch 2");
        Assert.That(lines[1], Is.EqualTo(kept.Split('\n')[1]), "epoch 1's line as the checkpoint recorded it");
    }

    [Test]
    public void Resume_names_an_optimizer_state_that_cannot_be_loaded()
    {
        var dir = TempDir.New("optimstate");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var ck = Path.Combine(run, "checkpoints");
        // A model state_dict in the optimizer's place, with last.json naming it, so that only its contents are wrong.
        File.Copy(Path.Combine(ck, "last.pt"), Path.Combine(ck, "last.optim.pt"), overwrite: true);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(ck, "last.json")))!;
        state["optimizer_sha256"] = Tool.Sha(Path.Combine(ck, "last.optim.pt"));
        File.WriteAllText(Path.Combine(ck, "last.json"), state.ToJsonString());
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2"]), 2,
            $"{Path.Combine(ck, "last.optim.pt")}: cannot load the checkpoint (");
    }

    [Test]
    public void Offline_torchvision_advice_names_only_sources_that_work_for_the_architecture()
    {
        var dir = TempDir.New("offline50");
        var weights = ArchSpecs.Get("resnet50").DefaultWeights;
        // An unreachable address stands for "offline" on any machine.
        var e = Assert.Throws<WeightsFileException>(() => PretrainedWeights.EnsureTorchvisionFile(dir, weights, url: "http://127.0.0.1:9/" + weights.FileName))!;
        Assert.That(e.Message, Does.Contain($"copy {weights.FileName} into {dir}").And.Contain("or to none"));
        Assert.That(e.Message, Does.Not.Contain("mlnet"), "mlnet holds resnet18 weights only and is refused for resnet50");
    }
}
