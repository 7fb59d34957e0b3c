using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using SkiaSharp;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Export;
using ResnetMnist.Model;
using ResnetMnist.ParityTests.Robustness;
using ResnetMnist.Training;
using static TorchSharp.torch;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;

namespace ResnetMnist.ParityTests.Export;

/// <summary>
/// <c>export --format onnx</c>: the graph runs in ONNX Runtime and gives the tool's own logits, for every batch size
/// (the batch axis is dynamic), and the <c>onnx</c> package's checker accepts it.
/// </summary>
[TestFixture, Category("Tool")]
public sealed class OnnxExportTests
{
    /// <summary>
    /// float32 logits of the same weights in two runtimes (different convolution kernels and summation orders): the
    /// ~1e-6 rounding differences of float32 accumulate over 20 layers to well under 1e-5 on logits of magnitude ~10.
    /// </summary>
    const double LogitsAbs = 1e-5;

    static float[] RunOnnx(InferenceSession s, Tensor x)
    {
        using var c = x.to_type(ScalarType.Float32).contiguous();
        var t = new DenseTensor(c.data<float>().ToArray(), c.shape.Select(d => (int)d).ToArray());
        using var results = s.Run([NamedOnnxValue.CreateFromTensor("input", t)]);
        return results.Single(r => r.Name == "logits").AsEnumerable<float>().ToArray();
    }

    [Test]
    public void The_trained_runs_onnx_model_gives_the_tools_logits_at_any_batch_size()
    {
        var dir = TempDir.New("onnx");
        var onnx = Path.Combine(dir, "model.onnx");
        var r = Tool.Run(dir, ["export", TrainedRun.Dir, "--format", "onnx", "--out", onnx]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());

        var cfg = ConfigLoader.Load(Path.Combine(TrainedRun.Dir, "config.yaml"));
        using var session = Session.Create(cfg, Splits.Test, checkpoint: TrainedRun.BestPt);
        session.Model.eval();
        using var ort = new InferenceSession(onnx);
        Assert.That(ort.InputMetadata["input"].Dimensions[0], Is.EqualTo(-1), "dynamic batch axis");
        using var _ = no_grad();
        foreach (var (start, n) in new[] { (0, 1), (1, 7), (8, 32) })
        {
            using var x = session.Test.Slice(start, n);
            using var logits = session.Model.forward(x);
            var tool = logits.to_type(ScalarType.Float32).data<float>().ToArray();
            var fromOnnx = RunOnnx(ort, x);
            Assert.That(fromOnnx, Has.Length.EqualTo(tool.Length));
            double worst = tool.Zip(fromOnnx, (a, b) => Math.Abs((double)a - b)).Max();
            TestContext.Out.WriteLine($"batch {n}: worst |logit difference| {worst:E2}");
            Assert.That(worst, Is.LessThanOrEqualTo(LogitsAbs), $"batch of {n}");
        }
    }

    [TestCase("resnet34", 3, 10)]
    [TestCase("resnet50", 3, 10)]
    [TestCase("resnext50_32x4d", 3, 10)]
    public void Deeper_architectures_export_too(string arch, int inChannels, int classes)
    {
        manual_seed(0);
        using var model = Models.Create(arch, inChannels, classes);
        model.eval();
        var onnx = Path.Combine(TempDir.New("onnx-" + arch), "model.onnx");
        OnnxExport.Write(model, onnx, 32, 32);
        using var ort = new InferenceSession(onnx);
        using var _ = no_grad();
        manual_seed(1);
        using var x = rand(3, inChannels, 32, 32);
        using var logits = model.forward(x);
        var tool = logits.data<float>().ToArray();
        double worst = tool.Zip(RunOnnx(ort, x), (a, b) => Math.Abs((double)a - b)).Max();
        TestContext.Out.WriteLine($"{arch}: worst |logit difference| {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(LogitsAbs));
    }

    [Test, Category("NeedsPyTorch")]
    public void The_onnx_checker_accepts_the_graph()
    {
        Python.RequireModule("onnx", "python3-onnx");
        var dir = TempDir.New("onnx-check");
        var onnx = Path.Combine(dir, "model.onnx");
        var r = Tool.Run(dir, ["export", TrainedRun.Dir, "--out", onnx]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var output = Python.Run("""
            import sys
            import onnx
            m = onnx.load(sys.argv[1])
            onnx.checker.check_model(m, full_check=True)
            print("ok", m.opset_import[0].version, sorted({n.op_type for n in m.graph.node}))
            """, onnx);
        Assert.That(output, Does.StartWith("ok 13"));
        foreach (var op in new[] { "Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm" })
            Assert.That(output, Does.Contain($"'{op}'"));
    }

    /// <summary>
    /// <c>class_names</c> are torchvision's: MNIST's <c>classes</c> ("0 - zero", ...) by their digit, Fashion-MNIST's
    /// <c>classes</c> as they are; CIFAR-10's come from its <c>batches.meta</c>, so only their count and the rule are
    /// checked here. <c>mean</c>/<c>std</c> have one entry per channel, and outputs beyond the dataset's classes are
    /// named by their number.
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void Metadata_class_names_are_torchvisions_and_mean_std_have_one_entry_per_channel()
    {
        var output = Python.Run("""
            import json
            from torchvision import datasets
            print(json.dumps({"mnist": [c.split(" - ")[0] for c in datasets.MNIST.classes], "fashion-mnist": datasets.FashionMNIST.classes}))
            """);
        var torchvision = JsonSerializer.Deserialize<Dictionary<string, string[]>>(output)!;
        foreach (var spec in DatasetSpecs.All)
            foreach (var normalize in new[] { false, true })
            {
                var meta = OnnxExport.Metadata(spec, normalize, spec.NumClasses, "ab");
                var names = JsonSerializer.Deserialize<string[]>(meta["class_names"])!;
                if (torchvision.TryGetValue(spec.Name, out var expected)) Assert.That(names, Is.EqualTo(expected), spec.Name);
                Assert.That(names, Has.Length.EqualTo(spec.NumClasses).And.All.Not.Empty, spec.Name);
                var mean = JsonSerializer.Deserialize<double[]>(meta["mean"])!;
                var std = JsonSerializer.Deserialize<double[]>(meta["std"])!;
                Assert.That(mean, Has.Length.EqualTo(spec.Channels), spec.Name);
                Assert.That(std, Has.Length.EqualTo(spec.Channels), spec.Name);
                if (!normalize) Assert.That((mean.Distinct().Single(), std.Distinct().Single()), Is.EqualTo((0.0, 1.0)), spec.Name);
                Assert.That(JsonSerializer.Deserialize<int[]>(meta["input_size"]), Is.EqualTo(new[] { spec.Channels, spec.Height, spec.Width }), spec.Name);
            }
        var wider = JsonSerializer.Deserialize<string[]>(OnnxExport.Metadata(DatasetSpecs.Mnist, false, 12, "ab")["class_names"])!;
        Assert.That(wider[10..], Is.EqualTo(new[] { "10", "11" }));
    }

    /// <summary>The <c>metadata_props</c> of an exported file, by key (each value JSON).</summary>
    static Dictionary<string, string> MetadataOf(string onnx) =>
        ModelProto.Parser.ParseFromFile(onnx).MetadataProps.ToDictionary(p => p.Key, p => p.Value);

    /// <summary>
    /// An image-folder model (<see cref="TrainedImageFolderRun"/>): <c>class_names</c> are the class folders in label
    /// order, <c>input_size</c> is [3, image_size, image_size], <c>mean</c>/<c>std</c> are ImageNet's (data.normalize);
    /// applied to the evaluation transform's 0..1 pixels (Resize + CenterCrop) of the validation images, they give the
    /// input on which ONNX Runtime computes the tool's logits.
    /// </summary>
    [Test]
    public void An_image_folder_models_metadata_names_its_folders_and_preprocesses_as_evaluation()
    {
        var dir = TempDir.New("onnx-imagefolder");
        var onnx = Path.Combine(dir, "model.onnx");
        var r = Tool.Run(dir, ["export", TrainedImageFolderRun.Dir, "--out", onnx]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var meta = MetadataOf(onnx);
        Assert.That(JsonSerializer.Deserialize<string[]>(meta["class_names"]), Is.EqualTo(TrainedImageFolderRun.Classes), "the class folders, sorted");
        int s = TrainedImageFolderRun.ImageSize;
        Assert.That(JsonSerializer.Deserialize<int[]>(meta["input_size"]), Is.EqualTo(new[] { 3, s, s }));
        var mean = JsonSerializer.Deserialize<double[]>(meta["mean"])!;
        var std = JsonSerializer.Deserialize<double[]>(meta["std"])!;
        Assert.That(mean, Is.EqualTo(new[] { 0.485, 0.456, 0.406 }), "ImageNet's mean");
        Assert.That(std, Is.EqualTo(new[] { 0.229, 0.224, 0.225 }), "ImageNet's std");
        Assert.That(JsonSerializer.Deserialize<string>(meta["source_sha256"]), Is.EqualTo(Tool.Sha(TrainedImageFolderRun.BestPt)));

        var cfg = ConfigLoader.Load(Path.Combine(TrainedImageFolderRun.Dir, "config.yaml"));
        using var session = Session.Create(cfg, Splits.Test, checkpoint: TrainedImageFolderRun.BestPt);
        session.Model.eval();
        var index = ResnetMnist.Data.Images.ImageFolder.Index(Path.Combine(TrainedImageFolderRun.Root, "val"), TrainedImageFolderRun.Classes);
        using var pixels = ImageSplit.FromFolder(index, ResnetMnist.Data.Images.ImageTransforms.For(s, null), 2, null, null, ScalarType.Float32, CPU);
        using var ort = new InferenceSession(onnx);
        using var _ = no_grad();
        int n = session.Test.Count;
        using var x = session.Test.Slice(0, n);
        using var logits = session.Model.forward(x);
        using var raw = pixels.Slice(0, n);
        var input = raw.data<float>().ToArray();
        for (int i = 0; i < input.Length; i++)
        {
            int c = (int)(i / (s * s) % 3);
            input[i] = (float)((input[i] - mean[c]) / std[c]);
        }
        using var results = ort.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor(input, [n, 3, s, s]))]);
        var fromOnnx = results.Single().AsEnumerable<float>().ToArray();
        var tool = logits.data<float>().ToArray();
        double worst = tool.Zip(fromOnnx, (a, b) => Math.Abs((double)a - b)).Max();
        TestContext.Out.WriteLine($"{n} validation images: worst |logit difference| {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(LogitsAbs));
    }

    [Test]
    public void A_bad_format_or_folder_is_one_line()
    {
        var dir = TempDir.New("onnx-bad");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", TrainedRun.Dir, "--format", "tflite"]), 2, "--format tflite: allowed: onnx");
        File.WriteAllText(Path.Combine(dir, "afile"), "");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", TrainedRun.Dir, "--out", Path.Combine(dir, "afile", "m.onnx")]), 2, "afile: is a file, expected a folder for --out");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", TrainedRun.Dir, "--out", "/etc/new/m.onnx"]), 2, "/etc/new: is a system folder");
        Assert.That(Directory.Exists("/etc/new"), Is.False);
    }

    /// <summary>
    /// <c>export</c> makes the missing folders of <c>--out</c>, and the file's <c>metadata_props</c> say what a user of
    /// the model needs: class names, input size, the checkpoint's sha256, and the mean and std that, applied to an
    /// image's 0..1 pixels, give the input on which ONNX Runtime classifies as <c>predict</c> does (with and without
    /// <c>data.normalize</c>, the same weights).
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void Export_creates_its_folder_and_its_metadata_preprocesses_as_predict_does(bool normalize)
    {
        var dir = TempDir.New("onnx-meta");
        var yaml = Tool.SmallConfig().Replace("\ndata:\n", $"\ndata:\n  normalize: {(normalize ? "true" : "false")}\n");
        Assert.That(yaml, Does.Contain("normalize:"));
        var cfg = Tool.WriteConfig(dir, yaml);
        var onnx = Path.Combine(dir, "new", "dir", "model.onnx");
        var r = Tool.Run(dir, ["export", TrainedRun.Dir, "--config", cfg, "--out", onnx]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());

        var meta = MetadataOf(onnx);
        Assert.That(JsonSerializer.Deserialize<string[]>(meta["class_names"]), Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString())), "MNIST's classes are its digits");
        Assert.That(JsonSerializer.Deserialize<int[]>(meta["input_size"]), Is.EqualTo(new[] { 1, 28, 28 }));
        Assert.That(JsonSerializer.Deserialize<string>(meta["source_sha256"]), Is.EqualTo(Tool.Sha(TrainedRun.BestPt)));
        var mean = JsonSerializer.Deserialize<double[]>(meta["mean"])!;
        var std = JsonSerializer.Deserialize<double[]>(meta["std"])!;
        Assert.That(mean, Has.Length.EqualTo(1));
        Assert.That(std, Has.Length.EqualTo(1));

        // A grey 28×28 image (no resizing), not inverted: pixels v / 255, then the metadata's normalisation.
        var png = Path.Combine(dir, "grey.png");
        var pixels = new float[28 * 28];
        using (var bmp = new SKBitmap(28, 28))
        {
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    byte v = (byte)((x * 37 + y * 11) % 256);
                    bmp.SetPixel(x, y, new SKColor(v, v, v));
                    pixels[y * 28 + x] = (float)((v / 255.0 - mean[0]) / std[0]);
                }
            using var fs = File.Create(png);
            bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
        }
        r = Tool.Run(dir, ["predict", TrainedRun.Dir, "--config", cfg, "--invert", "false", "--json", png]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var tool = JsonNode.Parse(r.Stdout)!["predictions"]![0]!["probabilities"]!.AsArray().Select(p => (double)p!).ToArray();

        using var ort = new InferenceSession(onnx);
        using var results = ort.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor(pixels, [1, 1, 28, 28]))]);
        var logits = results.Single().AsEnumerable<float>().Select(v => (double)v).ToArray();
        double top = logits.Max(), sum = logits.Sum(l => Math.Exp(l - top));
        var fromOnnx = logits.Select(l => Math.Exp(l - top) / sum).ToArray();
        // softmax changes by at most half the largest logit change, and the logits agree within LogitsAbs (above)
        double worst = tool.Zip(fromOnnx, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"normalize {normalize}: mean {meta["mean"]}, std {meta["std"]}, worst |probability difference| {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(LogitsAbs));
    }
}
