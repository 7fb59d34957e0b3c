using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;
using ResnetMnist.Data;
using SkiaSharp;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// The error contract seen from outside, for hostile files on every path that reads one: one line
/// <c>error: &lt;where&gt;: &lt;what&gt;</c>, exit 2 for bad input, no .NET exception names or libtorch frames, nothing run.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class ToolContractTests
{
    static void NoFrames(ToolResult r) =>
        Assert.That(r.Stderr, Does.Not.Contain("frame #").And.Not.Contain("Exception raised from").And.Not.Contain("Exception:"), r.ToString());

    [Test]
    public void The_decoy_archive_is_refused_by_evaluate_inspect_and_pretrained_and_runs_nothing()
    {
        var dir = TempDir.New("decoy");
        var marker = Path.Combine(dir, "PAYLOAD-RAN");
        var pth = DecoyPth(Path.Combine(dir, "decoy.pth"), marker);
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        Tool.AssertOneErrorLine(Tool.Run(dir, ["weights", "inspect", pth]), 2, "decoy.pth: the zip file holds another pickle 'archive/a/data.pkl'");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["evaluate", pth, "--config", cfg]), 2, "refused as ambiguous");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", cfg, "--out", Path.Combine(dir, "run"), "--set", $"model.pretrained={pth}"]), 2, "refused as ambiguous");
        Assert.That(File.Exists(marker), Is.False, "the payload ran");
    }

    [Test]
    public void Evaluate_and_predict_refuse_a_checkpoint_that_calls_posix_system()
    {
        var dir = TempDir.New("evilpt");
        var marker = Path.Combine(dir, "PAYLOAD-RAN");
        var pt = Zip(Path.Combine(dir, "best.pt"), ("archive/data.pkl", CallPickle("posix", "system", $"touch {marker}")));
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        Tool.AssertOneErrorLine(Tool.Run(dir, ["evaluate", pt, "--config", cfg]), 2, "best.pt: refused: the pickle references posix.system");
        var png = Path.Combine(dir, "d.png");
        WritePng(png, 28, 28);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["predict", pt, png, "--config", cfg]), 2, "refused: the pickle references posix.system");
        Assert.That(File.Exists(marker), Is.False, "the payload ran");
    }

    [Test]
    public void Resume_refuses_a_swapped_last_pt_even_with_its_hash_updated()
    {
        var dir = TempDir.New("swap");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var marker = Path.Combine(dir, "PAYLOAD-RAN");
        var lastPt = Path.Combine(run, "checkpoints", "last.pt");
        Zip(lastPt, ("archive/data.pkl", CallPickle("posix", "system", $"touch {marker}")));
        var json = Path.Combine(run, "checkpoints", "last.json");
        var state = JsonNode.Parse(File.ReadAllText(json))!;
        state["weights_sha256"] = Tool.Sha(lastPt);
        File.WriteAllText(json, state.ToJsonString());
        var before = Tool.FileHashes(Path.Combine(run, "checkpoints"));
        var r = Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2"]);
        Tool.AssertOneErrorLine(r, 2, "last.pt: refused: the pickle references posix.system");
        Assert.That(File.Exists(marker), Is.False, "the payload ran");
        Assert.That(Tool.FileHashes(Path.Combine(run, "checkpoints")), Is.EqualTo(before), "the checkpoint changed");
    }

    [Test]
    public void Resume_refuses_a_three_byte_rng_state_instead_of_aborting_in_libtorch()
    {
        var dir = TempDir.New("rng");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        var json = Path.Combine(run, "checkpoints", "last.json");
        var state = JsonNode.Parse(File.ReadAllText(json))!;
        state["rng_state"] = Convert.ToBase64String([1, 2, 3]);
        File.WriteAllText(json, state.ToJsonString());
        var r = Tool.Run(dir, ["train", "--resume", run, "--force", "--set", "train.epochs=2"]);
        Tool.AssertOneErrorLine(r, 2, "last.json: rng_state: 3 bytes; allowed: exactly 5056");
    }

    [Test]
    public void Deep_yaml_a_second_document_and_a_fifo_are_one_line_each()
    {
        var dir = TempDir.New("yaml");
        var deep = Tool.WriteConfig(dir, "seed: " + new string('[', 30_000) + new string(']', 30_000) + "\n", "deep.yaml");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["config", "show", deep]), 2, "deep.yaml:1:22: nested more than 16 levels deep; allowed: at most 16");
        var plain = Tool.WriteConfig(dir, "seed: 1\n", "plain.yaml");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["config", "show", plain, "--set", "seed=" + new string('[', 30_000)]), 2, "nested more than 16 levels deep");
        var two = Tool.WriteConfig(dir, "seed: 1\n---\nseed: 2\n", "two.yaml");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["config", "show", two]), 2, "two.yaml:2:1: a second YAML document");
        var fifo = Path.Combine(dir, "fifo.yaml");
        using (var mk = Process.Start("mkfifo", fifo)) mk.WaitForExit();
        Tool.AssertOneErrorLine(Tool.Run(dir, ["train", fifo]), 2, "fifo.yaml: is not a regular file");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["config", "show", "/dev/zero"]), 2, "/dev/zero: is not a regular file");
    }

    [Test]
    public void Absurd_sizes_in_the_config_are_refused_without_libtorch_frames()
    {
        var dir = TempDir.New("sizes");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var r = Tool.Run(dir, ["train", cfg, "--out", Path.Combine(dir, "run"), "--set", "model.num_classes=2147483647"]);
        Tool.AssertOneErrorLine(r, 2, "model.num_classes: must be <= 1000, found 2147483647");
        NoFrames(r);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["config", "show", cfg, "--set", "threads=100000"]), 2, "threads: must be <=");
    }

    [Test]
    public void A_gzip_bomb_as_test_images_is_refused_after_the_declared_bytes()
    {
        var dir = TempDir.New("gzbomb");
        var raw = Path.Combine(dir, "data", "MNIST", "raw");
        Directory.CreateDirectory(raw);
        foreach (var (prefix, n) in new[] { ("train", 32), ("t10k", 16) })
        {
            Idx.WriteImages(Path.Combine(raw, $"{prefix}-images-idx3-ubyte.gz"), n, 28, 28, new byte[n * 28 * 28]);
            Idx.WriteLabels(Path.Combine(raw, $"{prefix}-labels-idx1-ubyte.gz"), new byte[n]);
        }
        GzipBomb(Path.Combine(raw, "t10k-images-idx3-ubyte.gz"), IdxImagesHeader(16, 28, 28), 64L << 20);
        var yaml = Tool.SmallConfig().Replace($"'{Tool.SampleDataRoot}'", $"'{Path.Combine(dir, "data")}'");
        var r = Tool.Run(dir, ["train", Tool.WriteConfig(dir, yaml), "--out", Path.Combine(dir, "run")]);
        Tool.AssertOneErrorLine(r, 2, "t10k-images-idx3-ubyte.gz: header says 16 images of 28×28 (12560 bytes) but the decompressed file is longer");
    }

    internal static void WritePng(string path, int w, int h)
    {
        using var bmp = new SKBitmap(w, h);
        bmp.Erase(SKColors.Black);
        using var fs = File.Create(path);
        bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
    }

    [Test]
    public void Predict_refuses_a_huge_png_from_its_header_and_reads_images_after_double_dash()
    {
        var dir = TempDir.New("png");
        var huge = Path.Combine(dir, "huge.png");
        File.WriteAllBytes(huge, PngHeaderOnly(46_000, 46_000));
        Tool.AssertOneErrorLine(Tool.Run(dir, ["predict", TrainedRun.Dir, huge]), 1, "huge.png: image is 46000×46000 (2116000000 pixels); allowed: at most 16777216 pixels");

        var dashed = Path.Combine(dir, "-digit.png");
        WritePng(dashed, 28, 28);
        var r = Tool.Run(dir, ["predict", TrainedRun.Dir, "--invert", "false", "--", "-digit.png"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout, Does.Contain("-digit.png: "), r.ToString());
    }

    [Test]
    public void Predict_classifies_the_good_images_and_gives_one_error_line_per_bad_one()
    {
        var dir = TempDir.New("predict-mixed");
        WritePng(Path.Combine(dir, "good.png"), 28, 28);
        File.WriteAllText(Path.Combine(dir, "notes.png"), "not an image\n");
        var r = Tool.Run(dir, ["predict", TrainedRun.Dir, "good.png", "notes.png"]);
        Tool.AssertOneErrorLine(r, 1, "notes.png: not a PNG or JPEG image");
        Assert.That(r.Stdout, Does.StartWith("good.png: "), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("notes.png"), r.ToString());

        r = Tool.Run(dir, ["predict", TrainedRun.Dir, "notes.png", "good.png", "--json"]);
        Tool.AssertOneErrorLine(r, 1, "notes.png: not a PNG or JPEG image");
        var predictions = JsonNode.Parse(r.Stdout)!["predictions"]!.AsArray();
        Assert.That(predictions.Select(p => (string?)p!["image"]), Is.EqualTo(new[] { "notes.png", "good.png" }), r.ToString());
        Assert.That((string?)predictions[0]!["error"], Does.Contain("notes.png: not a PNG or JPEG image"), r.ToString());
        Assert.That(predictions[0]!["class"], Is.Null, r.ToString());
        Assert.That(predictions[1]!["error"], Is.Null, r.ToString());
        Assert.That((int)predictions[1]!["class"]!, Is.InRange(0, 9), r.ToString());

        r = Tool.Run(dir, ["predict", TrainedRun.Dir, "good.png", "good.png"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(2), "an image named twice is classified twice");
    }

    [Test]
    public void Predict_reads_a_folders_png_and_jpeg_files_in_name_order_and_reports_an_empty_one()
    {
        var dir = TempDir.New("predict-folder");
        var images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
        WritePng(Path.Combine(images, "b.PNG"), 28, 28);
        using (var bmp = new SKBitmap(30, 30)) // not 28×28: prepared as MNIST's digits were, so it needs a stroke
        using (var canvas = new SKCanvas(bmp))
        using (var fs = File.Create(Path.Combine(images, "a.png")))
        {
            canvas.Clear(SKColors.Black);
            canvas.DrawRect(12, 5, 4, 20, new SKPaint { Color = SKColors.White });
            canvas.Flush();
            bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
        }
        using (var bmp = new SKBitmap(28, 28))
        using (var fs = File.Create(Path.Combine(images, "c.jpeg")))
            bmp.Encode(fs, SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllText(Path.Combine(images, "readme.txt"), "not an image");
        WritePng(Path.Combine(Directory.CreateDirectory(Path.Combine(images, "sub")).FullName, "d.png"), 28, 28);
        var r = Tool.Run(dir, ["predict", TrainedRun.Dir, "images", "--json"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var names = JsonNode.Parse(r.Stdout)!["predictions"]!.AsArray().Select(p => Path.GetFileName((string?)p!["image"])).ToList();
        Assert.That(names, Is.EqualTo(new[] { "a.png", "b.PNG", "c.jpeg" }), "sorted by name (ordinal); other files and subfolders left out");

        Directory.CreateDirectory(Path.Combine(dir, "empty"));
        Tool.AssertOneErrorLine(Tool.Run(dir, ["predict", TrainedRun.Dir, "empty"]), 1, "empty: folder holds no PNG or JPEG image");
    }

    [Test]
    public void A_safetensors_file_with_a_null_dtype_is_one_line()
    {
        var dir = TempDir.New("st");
        var st = Safetensors(Path.Combine(dir, "w.safetensors"), "{\"w\":{\"dtype\":null,\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[16]);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["weights", "inspect", st]), 2, "w.safetensors: corrupt safetensors header: tensor 'w' has dtype null; allowed:");
    }
}
