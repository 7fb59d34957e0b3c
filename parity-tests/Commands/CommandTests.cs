using System.Globalization;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using TrainedRun = ResnetMnist.ParityTests.Robustness.TrainedRun;
using TrainedImageFolderRun = ResnetMnist.ParityTests.Robustness.TrainedImageFolderRun;
using ResnetMnist.Training;
using SkiaSharp;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Commands;

/// <summary>The commands a user runs besides train: evaluate, predict, sweep, config show — through the real tool process.</summary>
[TestFixture, Category("Tool")]
public sealed class CommandTests
{
    [Test]
    public void EvaluatePrintsAccuracyAndConfusionMatrixThatMatchTheLibrary()
    {
        var r = Tool.Run(TrainedRun.Dir, ["evaluate", TrainedRun.Dir]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var cfg = ConfigLoader.Load(Path.Combine(TrainedRun.Dir, "config.yaml"));
        using var session = Session.Create(cfg, Splits.Test, checkpoint: TrainedRun.BestPt);
        var e = Evaluator.Run(session.Model, session.Test, 1000, 10);
        Assert.That(r.Stdout, Does.Contain(string.Create(CultureInfo.InvariantCulture, $"test accuracy: {e.Accuracy:F2}%")));
        Assert.That(r.Stdout, Does.Contain("true \\ predicted"));
        long total = 0;
        foreach (var v in e.Confusion) total += v;
        Assert.That(total, Is.EqualTo(session.Test.Count), "confusion matrix counts every test image once");
    }

    [Test]
    public void PredictOnPngsAgreesWithTheTensorPath()
    {
        var dir = TempDir.New("predict");
        var images = Idx.ReadImages(Repo.Path("data", "MNIST", "raw", "t10k-images-idx3-ubyte.gz"));
        var files = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            using var bmp = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    byte v = images.Pixels[i * 784 + y * 28 + x];
                    bmp.SetPixel(x, y, new SKColor(v, v, v));
                }
            var path = Path.Combine(dir, $"digit{i}.png");
            using (var fs = File.Create(path)) bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
            files.Add(path);
        }
        var r = Tool.Run(dir, ["predict", TrainedRun.Dir, .. files, "--invert", "false"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());

        // The same images straight from the IDX file through the library.
        var cfg = ConfigLoader.Load(Path.Combine(TrainedRun.Dir, "config.yaml"));
        using var session = Session.Create(cfg, Splits.Test, checkpoint: TrainedRun.BestPt);
        session.Model.eval();
        using var _ = no_grad();
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        for (int i = 0; i < 3; i++)
        {
            var p = nn.functional.softmax(session.Model.forward(session.Test.Slice(i, 1)), 1)[0];
            int expected = (int)p.argmax().item<long>();
            Assert.That(lines[i], Does.StartWith($"{files[i]}: {expected} ("), $"image {i}");
            var probs = lines[i][(lines[i].IndexOf('[') + 1)..lines[i].IndexOf(']')].Split(' ')
                .Select(t => double.Parse(t.Split(':')[1], CultureInfo.InvariantCulture)).ToArray();
            Assert.That(probs.Sum(), Is.EqualTo(1).Within(0.01), "probabilities sum to 1");
        }
    }

    /// <summary>
    /// CIFAR-10 through the tool: a short augmented run on the fixture in torchvision's format, then evaluate, then
    /// predict on colour PNGs written from the test images, which must agree with the same images' tensor path.
    /// </summary>
    [Test]
    public void Cifar10TrainsEvaluatesAndPredictsColourImages()
    {
        var dir = TempDir.New("cifar");
        var cfg = Tool.WriteConfig(dir, $$"""
            seed: 1
            threads: 2
            data: {dataset: cifar10, root: '{{Repo.Path("parity-tests", "data", "cifar10-fixture", "p2")}}', augment: true, normalize: true}
            train: {epochs: 2, batch_size: 32}
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            """);
        var run = Path.Combine(dir, "run");
        var t = Tool.Run(dir, ["train", cfg, "--out", run]);
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        Assert.That(File.ReadAllText(Path.Combine(run, "config.yaml")), Does.Contain("in_channels: 3").And.Contain("augment: true"));
        var e = Tool.Run(dir, ["evaluate", run]);
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());

        var resolved = ConfigLoader.Load(Path.Combine(run, "config.yaml"));
        using var session = Session.Create(resolved, Splits.Test, checkpoint: Path.Combine(run, "checkpoints", "best.pt"));
        var files = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var px = session.Test.Pixels[i].data<byte>().ToArray();     // 3×32×32, channel-major
            using var bmp = new SKBitmap(32, 32, SKColorType.Rgba8888, SKAlphaType.Opaque);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    bmp.SetPixel(x, y, new SKColor(px[y * 32 + x], px[1024 + y * 32 + x], px[2048 + y * 32 + x]));
            var path = Path.Combine(dir, $"image{i}.png");
            using (var fs = File.Create(path)) bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
            files.Add(path);
        }
        var r = Tool.Run(dir, ["predict", run, .. files]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        session.Model.eval();
        using var _ = no_grad();
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        for (int i = 0; i < 3; i++)
        {
            var p = nn.functional.softmax(session.Model.forward(session.Test.Slice(i, 1)), 1)[0].to_type(ScalarType.Float64).data<double>().ToArray();
            var probs = lines[i][(lines[i].IndexOf('[') + 1)..lines[i].IndexOf(']')].Split(' ')
                .Select(t => double.Parse(t.Split(':')[1], CultureInfo.InvariantCulture)).ToArray();
            for (int k = 0; k < 10; k++)
                Assert.That(probs[k], Is.EqualTo(p[k]).Within(0.0005 + 1e-9), $"image {i}, class {k}: the PNG path gives the tensor path's probabilities (printed to 3 decimals)");
            // classes by name: CIFAR-10's label_names as batches.meta holds them
            int cls = Array.IndexOf(p, p.Max());
            Assert.That(lines[i], Does.StartWith($"{files[i]}: {Labels[cls]} ("), "predict names the class");
        }
        var json = Tool.Run(dir, ["predict", run, files[0], "--json"]);
        using (var doc = System.Text.Json.JsonDocument.Parse(json.Stdout))
        {
            var first = doc.RootElement.GetProperty("predictions")[0];
            Assert.That(first.GetProperty("class_name").GetString(), Is.EqualTo(Labels[first.GetProperty("class").GetInt32()]));
        }
        Assert.That(e.Stdout, Does.Contain("3 cat").And.Contain("9 truck"), "confusion-matrix rows carry the class names\n" + e.Stdout);
        foreach (var file in new[] { Path.Combine(run, "summary.json"), Path.Combine(run, "checkpoints", "best.json") })
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
            Assert.That(doc.RootElement.GetProperty("class_names").EnumerateArray().Select(x => x.GetString()), Is.EqualTo(Labels), file);
        }
    }

    /// <summary>
    /// An image-folder model through the tool: a one-epoch run on the fixture (<see cref="TrainedImageFolderRun"/>),
    /// then predict and evaluate name the classes by the folders of ROOT/train (sorted), as summary.json and the
    /// checkpoint's best.json record them (export's metadata: OnnxExportTests).
    /// </summary>
    [Test]
    public void ImageFolderModelNamesItsClassesByTheFolders()
    {
        var dir = TempDir.New("imagefolder");
        var root = TrainedImageFolderRun.Root;
        var run = TrainedImageFolderRun.Dir;
        var folders = TrainedImageFolderRun.Classes;
        foreach (var file in new[] { Path.Combine(run, "summary.json"), Path.Combine(run, "checkpoints", "best.json") })
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
            Assert.That(doc.RootElement.GetProperty("class_names").EnumerateArray().Select(x => x.GetString()), Is.EqualTo(folders), file);
        }
        var image = Path.Combine(root, "val", "dog", "dog01.jpg");
        var json = Tool.Run(dir, ["predict", run, image, "--json"]);
        Assert.That(json.ExitCode, Is.EqualTo(0), json.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(json.Stdout))
        {
            var first = doc.RootElement.GetProperty("predictions")[0];
            Assert.That(first.GetProperty("class_name").GetString(), Is.EqualTo(folders[first.GetProperty("class").GetInt32()]));
        }
        var e = Tool.Run(dir, ["evaluate", run]);
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());
        Assert.That(e.Stdout, Does.Contain("0 cat").And.Contain("1 dog").And.Contain("2 emu"), "confusion-matrix rows carry the folder names\n" + e.Stdout);
    }

    /// <summary>label_names of the fixture's batches.meta (torchvision's CIFAR-10, md5-checked), read by the tool's own reader.</summary>
    static IReadOnlyList<string> Labels => ResnetMnist.Data.Cifar.ReadMeta(ResnetMnist.Data.CifarFiles.Cifar10,
        Repo.Path("parity-tests", "data", "cifar10-fixture", "p2", "cifar-10-batches-py", "batches.meta")).LabelNames;

    [Test]
    public void ClassNamesAreTheDatasetsAndTheLabelNumberBeyondThem()
    {
        Assert.That(ResnetMnist.Data.DatasetSpecs.Cifar10.ClassNames, Is.EqualTo(Labels), "CIFAR-10's names are batches.meta's label_names");
        var cfg = ConfigLoader.Parse("data: {dataset: fashion-mnist}\nmodel: {num_classes: 12}", null);
        Assert.That(ResnetMnist.Data.ClassNames.For(cfg.Data.Dataset, cfg.Model.NumClasses), Is.EqualTo(ResnetMnist.Data.DatasetSpecs.FashionMnist.ClassNames.Concat(["10", "11"])));
        var mnistCfg = ConfigLoader.Parse("", null);
        var mnist = ResnetMnist.Data.ClassNames.For(mnistCfg.Data.Dataset, mnistCfg.Model.NumClasses);
        Assert.That(mnist, Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString(CultureInfo.InvariantCulture))));
    }

    [Test]
    public void SweepRunsEveryCombinationAndWritesTheTable()
    {
        var dir = TempDir.New("sweep");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16));
        var r = Tool.Run(dir, ["sweep", cfg, "--grid", "train.batch_size=16,32", "--grid", "optimizer.name=adam,sgd", "--out", Path.Combine(dir, "sw")]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var md = File.ReadAllLines(Path.Combine(dir, "sw", "sweep.md"));
        var rows = md.Where(l => l.StartsWith("| 16 |") || l.StartsWith("| 32 |")).ToList();
        Assert.That(rows, Has.Count.EqualTo(4), string.Join("\n", md));
        foreach (var name in new[] { "train.batch_size=16_optimizer.name=adam", "train.batch_size=32_optimizer.name=sgd" })
            Assert.That(File.Exists(Path.Combine(dir, "sw", name, "metrics.csv")), name);
    }

    [Test]
    public void SweepRecordsADivergedRunContinuesAndSkipsCompletedRunsWhenRerun()
    {
        var dir = TempDir.New("sweepdiv");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16));
        var sw = Path.Combine(dir, "sw");
        string[] args = ["sweep", cfg, "--set", "optimizer.name=sgd", "--grid", "optimizer.lr=1e30,0.001", "--out", sw];
        var r = Tool.Run(dir, args);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        string diverged = Path.Combine(sw, "optimizer.lr=1e30"), completed = Path.Combine(sw, "optimizer.lr=0.001");
        Assert.That(Status(diverged), Is.EqualTo("diverged"), r.ToString());
        Assert.That(Status(completed), Is.EqualTo("completed"), "the sweep went on after the diverged run\n" + r);
        var csv = File.ReadAllLines(Path.Combine(sw, "sweep.csv"));
        Assert.That(csv[0], Is.EqualTo("optimizer.lr,status,final_test_accuracy,best_test_accuracy,final_train_loss,train_seconds,run"));
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[1]), Is.EqualTo(new[] { "diverged", "completed" }), string.Join("\n", csv));
        var done = csv[2].Split(',');
        Assert.That(double.Parse(done[2], CultureInfo.InvariantCulture), Is.InRange(0, 100));
        Assert.That(done[6], Is.EqualTo("optimizer.lr=0.001"));
        var md = File.ReadAllText(Path.Combine(sw, "sweep.md"));
        Assert.That(md, Does.Contain("| 1e30 | diverged |").And.Contain("| 0.001 | completed |"), md);

        var before = File.ReadAllBytes(Path.Combine(completed, "checkpoints", "last.pt"));
        var divergedBefore = Tool.FileHashes(diverged);
        var again = Tool.Run(dir, args);
        Assert.That(again.ExitCode, Is.EqualTo(1), "the sweep still holds a run that did not complete\n" + again);
        Assert.That(again.Stdout, Does.Contain("optimizer.lr=0.001: completed earlier, skipped"), again.ToString());
        Assert.That(again.Stdout, Does.Contain("== optimizer.lr=1e30: diverged earlier, skipped"), "a diverged run is finished: training it again gives the same result\n" + again);
        Assert.That(File.ReadAllBytes(Path.Combine(completed, "checkpoints", "last.pt")), Is.EqualTo(before), "a completed run was trained again");
        Assert.That(Tool.FileHashes(diverged), Is.EqualTo(divergedBefore), "a diverged run was trained again");
        Assert.That(Status(diverged), Is.EqualTo("diverged"));
    }

    [Test]
    public void SweepRecordsARunThatFailsWithAnErrorAndGoesOn()
    {
        var dir = TempDir.New("sweepfail");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig(trainLimit: 32, testLimit: 32, batch: 16));
        var sw = Path.Combine(dir, "sw");
        var r = Tool.Run(dir, ["sweep", cfg, "--grid", "data.dataset=fashion-mnist,mnist", "--out", sw]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(Status(Path.Combine(sw, "data.dataset=fashion-mnist")), Is.EqualTo("failed"));
        Assert.That(Status(Path.Combine(sw, "data.dataset=mnist")), Is.EqualTo("completed"));
        var csv = File.ReadAllLines(Path.Combine(sw, "sweep.csv"));
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[1]), Is.EqualTo(new[] { "failed", "completed" }), string.Join("\n", csv));
        Assert.That(File.ReadAllText(Path.Combine(sw, "sweep.md")), Does.Contain("`data.dataset=fashion-mnist` (failed): "));
    }

    [Test]
    public void SweepFolderNamesKeepTheKeyAndArePathSafe()
    {
        Assert.That(ResnetMnist.Outputs.SweepTable.FolderName([("optimizer.lr", "1e12")]), Is.EqualTo("optimizer.lr=1e12"));
        Assert.That(ResnetMnist.Outputs.SweepTable.FolderName([("model.pretrained", "../w/x.pth"), ("seed", "1")]), Is.EqualTo("model.pretrained=..-w-x.pth_seed=1"));
        Assert.That(ResnetMnist.Outputs.SweepTable.FolderName([("", ".hidden")]), Does.Not.StartWith("."));
    }

    [Test]
    public void WeightsInspectNamesDtypesAlikeForPthAndSafetensors()
    {
        var dir = TempDir.New("dtypes");
        var st = ResnetMnist.ParityTests.Robustness.CraftedFiles.Safetensors(Path.Combine(dir, "w.safetensors"),
            """{"fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", new byte[8]);
        var fromSafetensors = ResnetMnist.Weights.WeightsInspector.Inspect(st, 1, 10).Tensors.Single().DType;
        var fromPth = ResnetMnist.Weights.WeightsInspector.Inspect(TrainedRun.BestPt, 1, 10).Tensors.First().DType;
        Assert.That((fromSafetensors, fromPth), Is.EqualTo(("float32", "float32")));
    }

    [Test]
    public void WeightsInspectReportsTheModelRecordedInTheToolsOwnCheckpoint()
    {
        var w = Tool.Run(TempDir.New("infer"), ["weights", "inspect", TrainedRun.BestPt, "--json"]);
        Assert.That(w.ExitCode, Is.EqualTo(0), w.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(w.Stdout);
        var e = doc.RootElement;
        Assert.That((e.GetProperty("arch").GetString(), e.GetProperty("in_channels").GetInt32(), e.GetProperty("num_classes").GetInt32(), e.GetProperty("inferred").GetBoolean()),
            Is.EqualTo(("resnet18", 1, 10, false)));
        Assert.That((e.GetProperty("model").GetProperty("dataset").GetString(), e.GetProperty("model_source").GetString()), Is.EqualTo(("mnist", "the file's metadata")));
        var text = Tool.Run(TempDir.New("infer"), ["weights", "inspect", TrainedRun.BestPt]);
        Assert.That(text.Stdout, Does.Contain("recorded model (the file's metadata): resnet18, in_channels 1, num_classes 10, dataset mnist")
            .And.Contain("fits resnet18(in_channels=1, num_classes=10) as a checkpoint (the recorded model): yes"), text.ToString());
    }

    [Test]
    public void InferenceTellsResnet34FromResnet18AndReadsChannelsAndClasses()
    {
        var tensors = ResnetMnist.Model.ArchSpecs.Resnet34.StateDictLayout(3, 7).Select(e => new ResnetMnist.Weights.TensorInfo(e.Key, e.Shape, "float64")).ToList();
        var m = ResnetMnist.Weights.WeightsInspector.Infer(tensors)!;
        Assert.That((m.Arch.Name, m.InChannels, m.NumClasses, m.Dtype), Is.EqualTo(("resnet34", 3, 7, "float64")));
    }

    [Test]
    public void EvaluateAndPredictOnABareCopiedPtUseTheRecordedModel()
    {
        var dir = TempDir.New("barept");
        var pt = Path.Combine(dir, "model.pt");
        File.Copy(TrainedRun.BestPt, pt);
        var e = Tool.Run(dir, ["evaluate", pt, "--json", "--set", "data.test_limit=64"]);
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());
        Assert.That(e.Stderr, Does.Contain("model recorded in the file's metadata: resnet18, in_channels 1, num_classes 10, dataset mnist"), e.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(e.Stdout))
            Assert.That(doc.RootElement.GetProperty("test_images").GetInt32(), Is.EqualTo(64));
        var png = Path.Combine(dir, "d.png");
        using (var bmp = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque))
        using (var fs = File.Create(png)) bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
        var p = Tool.Run(dir, ["predict", pt, png]);
        Assert.That(p.ExitCode, Is.EqualTo(0), p.ToString());
        Assert.That(p.Stdout, Does.StartWith(png + ": "), p.ToString());
    }

    static string Status(string run)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        return doc.RootElement.GetProperty("status").GetString()!;
    }

    [Test]
    public void EvaluateJsonIsOneDocumentOnStdoutAndEvalJsonInTheRun()
    {
        var run = TrainedRun.CopyTo(Path.Combine(TempDir.New("evaljson"), "run"));
        var r = Tool.Run(run, ["evaluate", run, "--json"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var e = doc.RootElement;
        Assert.That(e.GetProperty("test_accuracy").GetDouble(), Is.InRange(0, 100));
        Assert.That(e.GetProperty("per_class_accuracy").GetArrayLength(), Is.EqualTo(10));
        Assert.That(e.GetProperty("confusion").EnumerateArray().Sum(row => row.EnumerateArray().Sum(v => v.GetInt64())), Is.EqualTo(e.GetProperty("test_images").GetInt64()));
        using var saved = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
        Assert.That(saved.RootElement.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(e.GetProperty("test_accuracy").GetDouble()));
    }

    [Test]
    public void PredictInfoAndWeightsInspectJsonAreOneDocumentOnStdout()
    {
        var dir = TempDir.New("json");
        var png = Path.Combine(dir, "d.png");
        using (var bmp = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque))
        using (var fs = File.Create(png)) bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
        var p = Tool.Run(dir, ["predict", TrainedRun.Dir, png, "--json"]);
        Assert.That(p.ExitCode, Is.EqualTo(0), p.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(p.Stdout))
        {
            var pred = doc.RootElement.GetProperty("predictions")[0];
            Assert.That(pred.GetProperty("image").GetString(), Is.EqualTo(png));
            Assert.That(pred.GetProperty("class").GetInt32(), Is.InRange(0, 9));
            Assert.That(pred.GetProperty("probabilities").EnumerateArray().Sum(v => v.GetDouble()), Is.EqualTo(1).Within(1e-6));
        }
        var i = Tool.Run(dir, ["info", "--json"]);
        Assert.That(i.ExitCode, Is.EqualTo(0), i.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(i.Stdout))
            Assert.That(doc.RootElement.GetProperty("threads").GetInt32(), Is.GreaterThan(0));
        var w = Tool.Run(dir, ["weights", "inspect", TrainedRun.BestPt, "--json"]);
        Assert.That(w.ExitCode, Is.EqualTo(0), w.ToString());
        using (var doc = System.Text.Json.JsonDocument.Parse(w.Stdout))
        {
            Assert.That(doc.RootElement.GetProperty("fits").GetBoolean(), Is.True);
            Assert.That(doc.RootElement.GetProperty("parameter_count").GetInt64(), Is.GreaterThan(11_000_000));
            Assert.That(doc.RootElement.GetProperty("tensors")[0].GetProperty("dtype").GetString(), Is.EqualTo("float32"));
        }
    }

    [Test]
    public void ConfigShowPrintsTheResolvedConfigWithOverrides()
    {
        var r = Tool.Run(Repo.Root, ["config", "show", "configs/quickstart.yaml", "--set", "optimizer.lr=0.01", "--set", "train.epochs=3"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var resolved = ConfigLoader.Parse(r.Stdout, null);
        Assert.That(resolved.Optimizer.Lr, Is.EqualTo(0.01));
        Assert.That(resolved.Train.Epochs, Is.EqualTo(3));
        Assert.That(resolved.Train.BatchSize, Is.EqualTo(64));
        Assert.That(resolved.Data.Root, Is.EqualTo(Repo.Path("data")), "relative data.root resolves against the config file's folder");
        Assert.That(ConfigSchema.ToYaml(resolved), Is.EqualTo(r.Stdout), "the printed config round-trips");
    }
}

/// <summary>Config semantics beyond errors: defaults, overrides, paths.</summary>
[TestFixture, Category("Tool")]
public sealed class ConfigTests
{
    [Test]
    public void DefaultsAreTheReferences()
    {
        var c = ConfigLoader.Parse("", null);
        Assert.That((c.Optimizer.Lr, c.Train.Epochs, c.Train.Shuffle, c.Data.Normalize, c.Model.Pretrained.Text, c.Train.Dtype),
            Is.EqualTo((1e-3, 10, true, false, "none", DtypeKind.Float32)));
    }

    [Test]
    public void SetWinsOverTheFileAndParsesYamlValues()
    {
        var c = ConfigLoader.Parse("optimizer: {name: adam, lr: 0.1}\n", "/tmp/x/c.yaml", ["optimizer.lr=0.5", "optimizer.betas=[0.8, 0.9]", "data.train_limit=null"]);
        Assert.That(c.Optimizer.Lr, Is.EqualTo(0.5));
        Assert.That(c.Optimizer.Betas, Is.EqualTo(new[] { 0.8, 0.9 }));
        Assert.That(c.Data.TrainLimit, Is.Null);
    }

    [Test]
    public void RelativePathsResolveAgainstTheConfigFolder() =>
        Assert.That(ConfigLoader.Parse("data: {root: ../d}\n", "/tmp/a/b/c.yaml").Data.Root, Is.EqualTo("/tmp/a/d"));

    [Test]
    public void LrSchedulesFollowPyTorchClosedForms()
    {
        var step = ConfigLoader.Parse("optimizer: {lr: 0.1}\nscheduler: {name: step, step_size: 2, gamma: 0.5}\n", null);
        Assert.That(new[] { 0, 1, 2, 3, 4 }.Select(e => LrSchedule.At(step, e, 0, 100)), Is.EqualTo(new[] { 0.1, 0.1, 0.05, 0.05, 0.025 }).Within(1e-15));
        var cos = ConfigLoader.Parse("train: {epochs: 4}\noptimizer: {lr: 0.1}\nscheduler: {name: cosine}\n", null);
        Assert.That(LrSchedule.At(cos, 2, 0, 100), Is.EqualTo(0.05).Within(1e-15));
        var one = ConfigLoader.Parse("optimizer: {lr: 0.01}\nscheduler: {name: onecycle, max_lr: 0.1, pct_start: 0.25}\n", null);
        Assert.That(LrSchedule.At(one, 0, 0, 101), Is.EqualTo(0.1 / 25).Within(1e-15), "onecycle starts at max_lr / 25");
        Assert.That(LrSchedule.At(one, 0, 100, 101), Is.EqualTo(0.1 / 25 / 1e4).Within(1e-15), "and ends at start / 1e4");
        double peak = Enumerable.Range(0, 101).Max(s => LrSchedule.At(one, 0, s, 101));
        Assert.That(peak, Is.EqualTo(0.1).Within(1e-3));
    }
}
