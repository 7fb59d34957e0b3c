using System.Buffers.Binary;
using System.IO.Compression;
using NUnit.Framework;
using ResnetMnist.Data;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// One bad input per case: the tool, run as a subprocess, must print exactly one <c>error: ...</c> line naming the
/// problem, exit with the expected code, and print no stack trace.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class BadInputTests
{
    /// <param name="Setup">Prepares files in the case's empty folder and returns the tool's arguments.</param>
    /// <param name="Fragment">Expected in the error line; <c>{dir}</c> stands for the case's folder.</param>
    public sealed record Case(string Name, Func<string, string[]> Setup, int Code, string Fragment)
    {
        public override string ToString() => Name;
    }

    static string Cfg(string dir, string yaml) => Tool.WriteConfig(dir, yaml);
    static string Small(string dir, string extra = "") => Tool.WriteConfig(dir, Tool.SmallConfig(extra: extra));
    static string[] Train(string dir, string yaml, params string[] more) => ["train", Cfg(dir, yaml), "--out", Path.Combine(dir, "run"), .. more];
    static string[] TrainSmall(string dir, params string[] more) => ["train", Small(dir), "--out", Path.Combine(dir, "run"), .. more];

    /// <summary>Writes a small valid MNIST layout (gzip'd IDX files) under <c>dir/data/MNIST/raw</c>, then lets <paramref name="spoil"/> break it.</summary>
    static string[] BadData(string dir, Action<string> spoil)
    {
        var raw = Path.Combine(dir, "data", "MNIST", "raw");
        Directory.CreateDirectory(raw);
        foreach (var (prefix, n) in new[] { ("train", 32), ("t10k", 16) })
        {
            var pixels = new byte[n * 28 * 28];
            new Random(n).NextBytes(pixels);
            Idx.WriteImages(Path.Combine(raw, $"{prefix}-images-idx3-ubyte.gz"), n, 28, 28, pixels);
            Idx.WriteLabels(Path.Combine(raw, $"{prefix}-labels-idx1-ubyte.gz"), Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray());
        }
        spoil(raw);
        var yaml = Tool.SmallConfig().Replace($"'{Tool.SampleDataRoot}'", $"'{Path.Combine(dir, "data")}'");
        return ["train", Cfg(dir, yaml), "--out", Path.Combine(dir, "run")];
    }

    static void Gz(string path, byte[] content)
    {
        using var f = File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        gz.Write(content);
    }

    static byte[] Ungz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    static void Patch(string path, int offset, int value)
    {
        var b = Ungz(path);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(offset), value);
        Gz(path, b);
    }

    public static IEnumerable<Case> Cases()
    {
        // --- command line (Spectre's own parse errors included) ---
        yield return new("unknown command", _ => ["frobnicate"], 2, "Unknown command 'frobnicate'");
        yield return new("unknown option", d => TrainSmall(d, "--bogus"), 2, "bogus");
        yield return new("missing argument", _ => ["evaluate"], 2, "missing required argument 'CHECKPOINT'");
        yield return new("option without value", d => ["train", Small(d), "--out"], 2, "option --out needs a value");
        yield return new("option followed by an option", d => ["train", Small(d), "--set", "--force"], 2, "option --set needs a value");
        yield return new("train without config, bad --set", _ => ["train", "--set", "train.epochs=zero"], 2, "train.epochs: expected an integer >= 1, found 'zero'");

        // --- config ---
        yield return new("malformed YAML", d => Train(d, "seed: 0\ndata: [\n"), 2, "config.yaml:3:1: malformed YAML");
        yield return new("unknown section, did-you-mean", d => Train(d, "trian:\n  epochs: 1\n"), 2, "config.yaml:1:1: unknown key 'trian' (did you mean 'train'?)");
        yield return new("unknown key, did-you-mean", d => Train(d, "train:\n  epoch: 1\n"), 2, "config.yaml:2:3: unknown key 'train.epoch' (did you mean 'train.epochs'?)");
        yield return new("wrong type", d => Train(d, "train:\n  epochs: two\n"), 2, "config.yaml:2:11: train.epochs: expected an integer >= 1, found 'two'");
        yield return new("list for a number", d => Train(d, "optimizer:\n  lr: [1, 2]\n"), 2, "config.yaml:2:7: optimizer.lr: expected a single value");
        yield return new("section not a mapping", d => Train(d, "data: 5\n"), 2, "config.yaml:1:7: data: expected a mapping");
        yield return new("lr = 0", d => Train(d, "optimizer:\n  lr: 0\n"), 2, "config.yaml:2:7: optimizer.lr: must be in (0, inf], found 0; allowed:");
        yield return new("lr < 0", d => Train(d, "optimizer:\n  lr: -0.1\n"), 2, "optimizer.lr: must be in (0, inf], found -0.1");
        yield return new("batch_size < 1", d => Train(d, "train:\n  batch_size: 0\n"), 2, "config.yaml:2:15: train.batch_size: must be >= 1, found 0; allowed: an integer >= 1");
        yield return new("epochs < 1", d => Train(d, "train:\n  epochs: 0\n"), 2, "train.epochs: must be >= 1, found 0");
        yield return new("train_limit < 1", d => Train(d, "data:\n  train_limit: 0\n"), 2, "data.train_limit: must be >= 1 or null, found 0");
        yield return new("test_limit < 1", d => Train(d, "data:\n  test_limit: -3\n"), 2, "data.test_limit: must be >= 1 or null, found -3");
        yield return new("momentum = 1", d => Train(d, "optimizer:\n  name: sgd\n  momentum: 1\n"), 2, "config.yaml:3:13: optimizer.momentum: must be in [0, 1), found 1");
        yield return new("momentum < 0", d => Train(d, "optimizer:\n  name: sgd\n  momentum: -0.5\n"), 2, "optimizer.momentum: must be in [0, 1), found -0.5");
        yield return new("unknown optimizer", d => Train(d, "optimizer:\n  name: adma\n"), 2, "config.yaml:2:9: optimizer.name: 'adma' is not allowed (did you mean 'adam'?); allowed: sgd, adam, adamw");
        yield return new("unknown dataset", d => Train(d, "data:\n  dataset: imagenet\n"), 2, "data.dataset: 'imagenet' is not allowed; allowed: mnist, fashion-mnist, cifar10, cifar100");
        yield return new("in_channels against the dataset", d => Train(d, "model:\n  in_channels: 3\n"), 2, "config.yaml:2:16: model.in_channels: is 3, but data.dataset mnist has 1-channel images; allowed: 1");
        yield return new("augment on mnist", d => Train(d, "data:\n  augment: true\n"), 2, "config.yaml:2:12: data.augment: applies to cifar10, cifar100, imagefolder only (data.dataset is mnist); allowed: false");
        yield return new("unknown device", d => Train(d, "device: tpu\n"), 2, "config.yaml:1:9: device: 'tpu' is not allowed (did you mean 'cpu'?); allowed: auto, cpu, cuda");
        yield return new("--set unknown key", d => TrainSmall(d, "--set", "optimizer.learning_rate=0.1"), 2, "--set optimizer.learning_rate=0.1: unknown key 'optimizer.learning_rate'");
        yield return new("--set bad value", d => TrainSmall(d, "--set", "train.batch_size=many"), 2, "--set train.batch_size=many: train.batch_size: expected an integer >= 1, found 'many'");
        yield return new("--set out of range", d => TrainSmall(d, "--set", "optimizer.lr=-1"), 2, "--set optimizer.lr=-1: optimizer.lr: must be in (0, inf]");
        yield return new("--set without =", d => TrainSmall(d, "--set", "optimizer.lr"), 2, "--set optimizer.lr: expected key.path=value");
        yield return new("--set invalid YAML", d => TrainSmall(d, "--set", "optimizer.betas=[0.9"), 2, "--set optimizer.betas=[0.9: value is not valid YAML");
        yield return new("missing config file", d => ["train", Path.Combine(d, "nope.yaml")], 2, "nope.yaml: config file not found");
        yield return new("directory as config", d => ["train", d], 2, "is a directory, expected a YAML config file");

        // --- data ---
        yield return new("data files missing", d => Train(d, Tool.SmallConfig().Replace($"'{Tool.SampleDataRoot}'", $"'{d}'")), 2,
            "MNIST/raw/t10k-images-idx3-ubyte(.gz): file not found");
        yield return new("bad IDX magic", d => BadData(d, raw => Patch(Path.Combine(raw, "train-images-idx3-ubyte.gz"), 0, 1234)), 2,
            "train-images-idx3-ubyte.gz: bad IDX magic 1234 (expected 2051");
        yield return new("count disagrees with file size", d => BadData(d, raw => Patch(Path.Combine(raw, "train-images-idx3-ubyte.gz"), 4, 33)), 2,
            "train-images-idx3-ubyte.gz: header says 33 images");
        yield return new("image and label counts differ", d => BadData(d, raw =>
            Idx.WriteLabels(Path.Combine(raw, "t10k-labels-idx1-ubyte.gz"), new byte[15])), 2, "t10k-images-idx3-ubyte.gz: 16 images but");
        yield return new("label outside the classes", d => BadData(d, raw =>
            Idx.WriteLabels(Path.Combine(raw, "t10k-labels-idx1-ubyte.gz"), Enumerable.Range(0, 16).Select(i => (byte)(i == 7 ? 12 : 0)).ToArray())), 2,
            "t10k-labels-idx1-ubyte.gz: label 12 at index 7 is outside 0..9");
        yield return new("truncated .gz", d => BadData(d, raw =>
        {
            var f = Path.Combine(raw, "t10k-images-idx3-ubyte.gz");
            var b = File.ReadAllBytes(f);
            File.WriteAllBytes(f, b[..(b.Length / 2)]);
        }), 2, "t10k-images-idx3-ubyte.gz: truncated or corrupt gzip data");
        yield return new("not gzip at all", d => BadData(d, raw => File.WriteAllText(Path.Combine(raw, "t10k-images-idx3-ubyte.gz"), "<html>404</html>")), 2,
            "t10k-images-idx3-ubyte.gz: truncated or corrupt gzip data");
        yield return new("directory instead of a data file", d => BadData(d, raw =>
        {
            File.Delete(Path.Combine(raw, "t10k-labels-idx1-ubyte.gz"));
            Directory.CreateDirectory(Path.Combine(raw, "t10k-labels-idx1-ubyte.gz"));
        }), 2, "t10k-labels-idx1-ubyte.gz: is a directory, expected an IDX file");
        yield return new("data verify with files missing", d => ["data", "verify", Cfg(d, $"data:\n  root: '{d}'\n")], 2, "4 of 4 MNIST files are missing");

        // --- checkpoints, weights, run folders ---
        yield return new("evaluate a truncated checkpoint", d =>
        {
            var pt = Path.Combine(d, "best.pt");
            var b = File.ReadAllBytes(TrainedRun.BestPt);
            File.WriteAllBytes(pt, b[..(b.Length / 3)]);
            return ["evaluate", pt, "--config", Small(d)];
        }, 2, "best.pt: not a readable PyTorch state_dict");
        yield return new("evaluate a checkpoint of another class count", _ =>
            ["evaluate", TrainedRun.Dir, "--set", "model.num_classes=5"], 2, "config.yaml with --set but 10 in the checkpoint (the file's metadata)");
        yield return new("evaluate a folder without a checkpoint", d => ["evaluate", d], 2, "checkpoints/best.pt: checkpoint not found");
        yield return new("evaluate a directory named .pt", d =>
        {
            Directory.CreateDirectory(Path.Combine(d, "x.pt", "checkpoints"));
            return ["evaluate", Path.Combine(d, "x.pt"), "--config", Small(d)];
        }, 2, "checkpoint not found");
        yield return new("resume after last.pt was truncated", d =>
        {
            var run = TrainedRun.CopyTo(Path.Combine(d, "run"));
            var pt = Path.Combine(run, "checkpoints", "last.pt");
            var b = File.ReadAllBytes(pt);
            File.WriteAllBytes(pt, b[..(b.Length / 2)]);
            return ["train", "--resume", run];
        }, 2, "last.pt: does not match last.json");
        yield return new("resume a folder without a run", d => ["train", Small(d), "--resume", d], 2, "no run to resume here");
        yield return new("resume with a changed config", d =>
            ["train", "--resume", TrainedRun.CopyTo(Path.Combine(d, "run")), "--set", "optimizer.lr=0.5"], 2,
            "the config changed in ways that alter the result");
        yield return new("pretrained file missing", d => TrainSmall(d, "--set", $"model.pretrained={d}/missing.pth"), 2, "missing.pth: file not found");
        yield return new("pretrained is a directory", d =>
        {
            Directory.CreateDirectory(Path.Combine(d, "w.pth"));
            return TrainSmall(d, "--set", $"model.pretrained={d}/w.pth");
        }, 2, "w.pth: is a directory");
        yield return new("pretrained is not a zip", d =>
        {
            File.WriteAllText(Path.Combine(d, "w.pth"), "not a torch file");
            return TrainSmall(d, "--set", $"model.pretrained={d}/w.pth");
        }, 2, "w.pth:");
        yield return new("--out is a file", d =>
        {
            File.WriteAllText(Path.Combine(d, "taken"), "");
            return ["train", Small(d), "--out", Path.Combine(d, "taken")];
        }, 2, "taken: is a file, expected a run folder");
    }

    [TestCaseSource(nameof(Cases))]
    public void Fails_with_one_clear_line(Case c)
    {
        var dir = TempDir.New("case");
        var args = c.Setup(dir);
        var before = Tool.FileHashes(dir);
        var r = Tool.Run(dir, args);
        Tool.AssertOneErrorLine(r, c.Code, c.Fragment.Replace("{dir}", dir));
        // Nothing that existed was changed, and no run folder was started.
        Assert.That(Tool.FileHashes(dir), Is.EqualTo(before), "a refused command changed existing files");
        Assert.That(Directory.Exists(Path.Combine(dir, "run", "checkpoints")) && !args.Contains("--resume"), Is.False,
            "a refused command created a run folder");
    }

    [Test]
    public void Verbose_adds_the_stack_trace()
    {
        var dir = TempDir.New("verbose");
        var r = Tool.Run(dir, Train(dir, "optimizer:\n  lr: 0\n", "--verbose"));
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error: "));
        Assert.That(r.Stderr, Does.Contain("ConfigException").And.Contain("   at "), r.ToString());
    }
}
