using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Parity;

namespace ResnetMnist.ParityTests.Data;

/// <summary>
/// <c>data.val_split</c> against PyTorch's <c>torch.utils.data.random_split</c>: the indices of both parts for several
/// (n, fraction, seed), from the committed reference/snapshots/split/random_split.json (written by
/// reference/make_split_snapshot.py with torch 1.13, no PyTorch needed here) and live from the reference program; and a
/// float64 run with a split that follows the reference program step by step across an epoch end.
/// </summary>
[TestFixture, Category("Data")]
public sealed class ValidationSplitTests
{
    static string Digest(IEnumerable<long> indices) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(string.Join(",", indices.Select(i => i.ToString(CultureInfo.InvariantCulture))))));

    static void AssertPart(JsonElement expected, long[] actual, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.GetProperty("length").GetInt32()), $"{what}: length");
        Assert.That(actual.Take(8), Is.EqualTo(expected.GetProperty("first").EnumerateArray().Select(e => e.GetInt64())), $"{what}: first indices");
        Assert.That(actual.TakeLast(8), Is.EqualTo(expected.GetProperty("last").EnumerateArray().Select(e => e.GetInt64())), $"{what}: last indices");
        Assert.That(Digest(actual), Is.EqualTo(expected.GetProperty("sha256").GetString()), $"{what}: sha256 of every index");
    }

    [Test]
    public void IndicesEqualTorchRandomSplitFromTheSnapshot()
    {
        var file = Repo.Path("reference", "snapshots", "split", "random_split.json");
        if (!File.Exists(file)) Assert.Fail($"{file} is missing: regenerate it with `/usr/bin/python3 reference/make_split_snapshot.py` (needs {Python.InstallCommand})");
        var cases = JsonDocument.Parse(File.ReadAllText(file)).RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.That(cases, Has.Count.GreaterThanOrEqualTo(5));
        foreach (var c in cases)
        {
            int n = c.GetProperty("n").GetInt32();
            double f = c.GetProperty("fraction").GetDouble();
            long seed = c.GetProperty("seed").GetInt64();
            var what = $"n {n}, fraction {f.ToString("R", CultureInfo.InvariantCulture)}, seed {seed}";
            var (train, val) = ValidationSplit.Indices(n, f, seed);
            AssertPart(c.GetProperty("train"), train, what + ", training part");
            AssertPart(c.GetProperty("validation"), val, what + ", validation part");
            // floor(n·f) is also what random_split computes from the fractions [1 - f, f] (documented in ValidationSplit).
            Assert.That(val.Length, Is.EqualTo(c.GetProperty("validation_length_from_fractions").GetInt32()), what + ": random_split's own length for the fractions");
            Assert.That(train.Concat(val).Order(), Is.EqualTo(Enumerable.Range(0, n).Select(i => (long)i)), what + ": a permutation of 0..n-1");
        }
    }

    [Test, Category("NeedsPyTorch")]
    public void IndicesEqualTheReferenceProgramsSplit()
    {
        // Cases not in the snapshot: odd sizes and fractions, large seeds, drawn from a fixed C# generator.
        var rng = new Random(24);
        var cases = Enumerable.Range(0, 6).Select(_ => (N: rng.Next(2, 5000), F: Math.Round(rng.NextDouble() * 0.9 + 0.05, 3), Seed: rng.NextInt64(0, long.MaxValue))).ToList();
        var json = Python.Run("""
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import resnet_mnist as rm
            out = []
            for c in json.loads(sys.argv[2]):
                train, val = rm.validation_split(range(c["n"]), c["f"], c["seed"])
                out.append([list(train.indices), list(val.indices)])
            print(json.dumps(out))
            """, Repo.Path("reference"), JsonSerializer.Serialize(cases.Select(c => new { n = c.N, f = c.F, seed = c.Seed })));
        var expected = JsonDocument.Parse(json).RootElement.EnumerateArray().ToList();
        for (int i = 0; i < cases.Count; i++)
        {
            var (train, val) = ValidationSplit.Indices(cases[i].N, cases[i].F, cases[i].Seed);
            var what = $"n {cases[i].N}, fraction {cases[i].F}, seed {cases[i].Seed}";
            Assert.That(train, Is.EqualTo(expected[i][0].EnumerateArray().Select(e => e.GetInt64())), what + ": training part");
            Assert.That(val, Is.EqualTo(expected[i][1].EnumerateArray().Select(e => e.GetInt64())), what + ": validation part");
        }
    }

    /// <summary>
    /// SGD with momentum, float64, 40 digits with val_split 0.25 (30 train in batches of 16 and 14, 10 validation): 4
    /// steps, so the epoch end after step 2 (the reshuffle of the training subset, and the validation loader's draw before
    /// the test loader's) lies inside the comparison. A wrong subset changes step 1's loss, a missing draw step 3's.
    /// Bounds: the check's own float64 bounds (<see cref="ParityCheck.Float64"/>).
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void Float64RunWithASplitFollowsTheReferenceStepByStep()
    {
        Python.RequireTorch();
        const int steps = 4;
        var cfg = ConfigLoader.Parse($$"""
            seed: 3
            threads: 2
            data: {dataset: mnist, root: '{{Repo.Path("data")}}', train_limit: 40, test_limit: 16, val_split: 0.25}
            train: {epochs: 2, batch_size: 16, dtype: float64}
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            """, null);
        var reference = ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), Python.Exe);
        using var tmp = new TempDir();
        var report = ParityCheck.Run(cfg, steps, DtypeKind.Float64, reference, Path.Combine(tmp.Path, "reference"));
        TestContext.Out.WriteLine($"val_split 0.25, {report.Steps} steps: worst relative loss difference {report.WorstRelativeLossDifference:E2}");
        Assert.That(report.Failures, Is.Empty);
        Assert.That(report.Passed, Is.True);
        Assert.That(report.Steps, Is.EqualTo(steps));
        Assert.That(report.InitTensorsDiffering, Is.Zero);
    }

    /// <summary>
    /// With augmentation the validation rows are evaluated without it, in the tool and in the reference (a Subset of
    /// the augmented training set would draw random crops from the global generator while validating, and every step
    /// after the first validation would differ). The image-folder fixture, 9 training + 3 validation images, batches
    /// of 3: steps 4 to 6 come after the first validation. Bounds: the check's own float64 bounds.
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void Float64AugmentedRunWithASplitValidatesWithoutAugmentation()
    {
        Python.RequireTorch();
        var cfg = ConfigLoader.Parse($$"""
            seed: 5
            threads: 2
            data: {dataset: imagefolder, root: '{{Repo.Path("parity-tests", "data", "imagefolder-fixture")}}', augment: true, normalize: true, image_size: 64, val_split: 0.25}
            train: {epochs: 2, batch_size: 3, dtype: float64}
            optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
            """, null);
        var reference = ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), Python.Exe);
        using var tmp = new TempDir();
        var report = ParityCheck.Run(cfg, 6, DtypeKind.Float64, reference, Path.Combine(tmp.Path, "reference"));
        TestContext.Out.WriteLine($"imagefolder, augment, val_split 0.25, {report.Steps} steps: worst relative loss difference {report.WorstRelativeLossDifference:E2}");
        Assert.That(report.Failures, Is.Empty);
        Assert.That(report.Passed, Is.True);
        Assert.That(report.Steps, Is.EqualTo(6));
    }

    [Test]
    public void AFractionThatHoldsNoImageIsRefusedNamingTheKey()
    {
        using var tmp = new TempDir();
        var cfg = Tool.WriteConfig(tmp.Path, $$"""
            data: {root: '{{Tool.SampleDataRoot}}', train_limit: 10, test_limit: 8, val_split: 0.05}
            train: {epochs: 1, batch_size: 8}
            """);
        var r = Tool.Run(tmp.Path, ["train", cfg, "--out", tmp.Sub("run")]);
        Tool.AssertOneErrorLine(r, 2, "data.val_split: 0.05 of 10 training images is no image");
        Assert.That(Directory.Exists(tmp.Sub("run")), Is.False, "nothing was created");
    }

    [Test]
    public void EarlyStoppingWithoutASplitIsRefused()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("train: {early_stop_patience: 2}\n", null));
        Assert.That(e!.Message, Does.Contain("train.early_stop_patience: needs a validation split (data.val_split > 0)"));
    }
}
