using System.Security.Cryptography;
using System.Text.Json;
using NUnit.Framework;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests;

/// <summary>
/// Reads the reference snapshots in <c>reference/snapshots/</c> (written by reference/make_snapshots.py) and
/// compares C# tensors with their records: shape, sum, abs_sum, max_abs and the sampled elements
/// <c>idx_i = (i * (n - 1)) / (k - 1)</c>, <c>k = min(n, K)</c>.
/// </summary>
public static class Snapshot
{
    static readonly Dictionary<string, JsonElement> Cache = new();

    /// <summary>Loads <c>reference/snapshots/NAME</c>; fails (never skips) when it is missing.</summary>
    public static JsonElement Load(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(name, out var e)) return e;
            var path = Repo.Path("reference", "snapshots", name);
            if (!File.Exists(path))
                Assert.Fail($"{path} is missing: regenerate it with `/usr/bin/python3 reference/make_snapshots.py` (needs apt-get install -y python3-torch python3-torchvision python3-yaml)");
            var doc = JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone();
            Cache[name] = doc;
            return doc;
        }
    }

    public static IEnumerable<string> Names(string file, string section) =>
        Load(file).GetProperty(section).EnumerateObject().Select(p => p.Name).ToList();

    /// <summary>The snapshots' model: <c>manual_seed(0)</c>, then resnet18 with 1 channel and 10 classes, as make_snapshots.py builds it.</summary>
    public static ResnetMnist.Model.ResNet SeedModel()
    {
        manual_seed(0);
        return ResnetMnist.Model.Models.resnet18(1, 10);
    }

    /// <summary>The fixed input batch of the snapshots: the first 8 images of the embedded training set, bytes / 255.</summary>
    public static (Tensor X, Tensor Y) InputBatch(int count = 8, int start = 0, ScalarType dtype = ScalarType.Float32)
    {
        var images = ResnetMnist.Data.Idx.ReadImages(Repo.Path("data", "MNIST", "raw", "train-images-idx3-ubyte.gz"));
        var labels = ResnetMnist.Data.Idx.ReadLabels(Repo.Path("data", "MNIST", "raw", "train-labels-idx1-ubyte.gz"));
        var px = images.Pixels.AsSpan(start * 784, count * 784).ToArray();
        var x = tensor(px, new long[] { count, 1, 28, 28 }).to_type(ScalarType.Float32).div_(255.0f).to_type(dtype);
        var y = tensor(labels.AsSpan(start, count).ToArray().Select(b => (long)b).ToArray());
        return (x, y);
    }

    public static string Sha256(Tensor t)
    {
        var c = t.contiguous().cpu();
        var bytes = c.bytes.ToArray();
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    /// <summary>Worst differences between a tensor and its reference record.</summary>
    public sealed record Diff(double MaxAbs, double MaxRel, double WorstExcess, string Where);

    /// <summary>
    /// Compares <paramref name="actual"/> with <paramref name="record"/> elementwise on the sampled indices, and on
    /// sum/abs_sum (scaled by element count). <c>WorstExcess</c> &gt; 0 means |a − e| &gt; atol + rtol·|e| somewhere.
    /// </summary>
    public static Diff Compare(Tensor actual, JsonElement record, double rtol, double atol)
    {
        var shape = record.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.That(actual.shape, Is.EqualTo(shape), "shape");
        var flat = actual.contiguous().reshape(-1).to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        var sample = record.GetProperty("sample").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        long n = flat.Length;
        int k = sample.Length;
        double maxAbs = 0, maxRel = 0, worst = double.NegativeInfinity;
        string where = "";
        for (int i = 0; i < k; i++)
        {
            long idx = k == 1 ? 0 : i * (n - 1) / (k - 1);
            Check(flat[idx], sample[i], $"element {idx}");
        }
        // Sums accumulate n rounding errors: compare them as means, with the same tolerances.
        double absMean = flat.Select(Math.Abs).Sum() / n;
        Check(flat.Sum() / n, record.GetProperty("sum").GetDouble() / n, "mean", atolScale: 1);
        Check(absMean, record.GetProperty("abs_sum").GetDouble() / n, "mean |x|", atolScale: 1);
        Check(flat.Max(Math.Abs), record.GetProperty("max_abs").GetDouble(), "max |x|");
        return new Diff(maxAbs, maxRel, worst, where);

        void Check(double a, double e, string label, double atolScale = 1)
        {
            double d = Math.Abs(a - e);
            double rel = d / Math.Max(Math.Abs(e), 1e-30);
            double excess = d - (atol * atolScale + rtol * Math.Abs(e));
            if (d > maxAbs) maxAbs = d;
            if (rel > maxRel && Math.Abs(e) > atol) maxRel = rel;
            if (excess > worst) { worst = excess; where = $"{label}: C# {a:R}, PyTorch {e:R}"; }
        }
    }

    /// <summary>Asserts that <paramref name="actual"/> matches <paramref name="record"/> within rtol/atol, naming what differs.</summary>
    public static Diff AssertClose(Tensor actual, JsonElement record, double rtol, double atol, string what)
    {
        var d = Compare(actual, record, rtol, atol);
        TestContext.Out.WriteLine($"{what}: max abs diff {d.MaxAbs:E2}, max rel diff {d.MaxRel:E2}");
        Assert.That(d.WorstExcess, Is.LessThanOrEqualTo(0),
            $"{what} differs from PyTorch beyond rtol {rtol:E1}, atol {atol:E1}: {d.Where} (max abs diff {d.MaxAbs:E3})");
        return d;
    }
}
