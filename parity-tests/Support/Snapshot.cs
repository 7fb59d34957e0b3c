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

    /// <summary>
    /// Where no reference of the running kernel set exists, float32 bounds become max(the test's own bound,
    /// <see cref="FloorMultiple"/> × PyTorch's cross-kernel floor for that tensor) (kernel_floors.json: the largest
    /// difference between PyTorch's own results under two kernel sets, on the same sampled elements).
    /// </summary>
    public const double FloorMultiple = 4;

    /// <summary>The kernel set this test process's libtorch runs with (<see cref="ResnetMnist.Native.KernelSet"/>).</summary>
    public static string KernelSet => ResnetMnist.Native.KernelSet.Current;

    /// <summary>The kernel sets that have reference data under <c>reference/snapshots/</c>.</summary>
    public static IReadOnlyList<string> Available => ResnetMnist.Native.KernelSet.Names
        .Where(k => Directory.Exists(Repo.Path("reference", "snapshots", k))).ToList();

    /// <summary>The kernel set whose reference data the tests read: the running one when it exists, else the nearest
    /// one below it (else above); <see cref="SameKernel"/> says which case holds.</summary>
    public static string ReferenceSet
    {
        get
        {
            var names = ResnetMnist.Native.KernelSet.Names;
            if (Available.Count == 0)
                Assert.Fail($"{Repo.Path("reference", "snapshots")} holds no kernel-set folder ({string.Join(", ", names)}): regenerate with `/usr/bin/python3 reference/make_snapshots.py` (needs apt-get install -y python3-torch python3-torchvision python3-yaml)");
            if (Available.Contains(KernelSet)) return KernelSet;
            int at = names.ToList().IndexOf(KernelSet);
            return Available.OrderBy(k => { int i = names.ToList().IndexOf(k); return i <= at ? at - i : 10 + i; }).First();
        }
    }

    /// <summary>True when the reference data was computed with the kernel set this process runs with.</summary>
    public static bool SameKernel => ReferenceSet == KernelSet;

    /// <summary>Path of a reference file of kernel set <paramref name="kernelSet"/> (default: <see cref="ReferenceSet"/>).</summary>
    public static string PathOf(string name, string? kernelSet = null) =>
        Repo.Path(["reference", "snapshots", kernelSet ?? ReferenceSet, .. name.Split('/')]);

    /// <summary>Loads <c>reference/snapshots/&lt;kernel set&gt;/NAME</c>; fails (never skips) when it is missing.</summary>
    public static JsonElement Load(string name, string? kernelSet = null) =>
        Read(PathOf(name, kernelSet), "regenerate it with `/usr/bin/python3 reference/make_snapshots.py` (needs apt-get install -y python3-torch python3-torchvision python3-yaml)");

    /// <summary>Parses a reference JSON file once per test run; fails (never skips) when it is missing, saying <paramref name="remedy"/>.</summary>
    static JsonElement Read(string path, string remedy)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(path, out var e)) return e;
            if (!File.Exists(path)) Assert.Fail($"{path} is missing: {remedy}");
            var doc = JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone();
            Cache[path] = doc;
            return doc;
        }
    }

    /// <summary>PyTorch's cross-kernel floor (max abs difference) of one float32 record, e.g. ("forward_train.json", "layers", "layer4").</summary>
    public static double Floor(string file, string section, string key)
    {
        var floors = Read(Repo.Path("reference", "snapshots", "kernel_floors.json"),
            "regenerate with `/usr/bin/python3 reference/make_snapshots.py` on a CPU that runs two or more kernel sets");
        return floors.GetProperty("floors").GetProperty(file).GetProperty(section).GetProperty(key).GetProperty("abs").GetDouble();
    }

    /// <summary>
    /// The float32 bound for one record: (<paramref name="rtol"/>, <paramref name="atol"/>) against the same kernel set's
    /// reference; against another kernel set's, atol grows to <see cref="FloorMultiple"/> × PyTorch's own floor.
    /// </summary>
    public static (double Rtol, double Atol) Bound(string file, string section, string key, double rtol, double atol, string? kernelSet = null) =>
        (kernelSet ?? ReferenceSet) == KernelSet ? (rtol, atol) : (rtol, Math.Max(atol, FloorMultiple * Floor(file, section, key)));

    /// <summary>Runs <paramref name="f"/> with libtorch's intra-op threads set to the reference's (meta.threads of
    /// <paramref name="file"/>): float32 reductions may split by thread.</summary>
    public static T WithReferenceThreads<T>(string file, Func<T> f)
    {
        int threads = Load(file).GetProperty("meta").GetProperty("threads").GetInt32();
        int before = get_num_threads();
        set_num_threads(threads);
        try { return f(); }
        finally { set_num_threads(before); }
    }

    public static IEnumerable<string> Names(string file, string section) =>
        Load(file).GetProperty(section).EnumerateObject().Select(p => p.Name).ToList();

    /// <summary>The snapshots' model: <c>manual_seed(0)</c>, then resnet18 with 1 channel and 10 classes, as make_snapshots.py builds it.</summary>
    public static ResnetMnist.Model.ResNet SeedModel()
    {
        manual_seed(0);
        return ResnetMnist.Model.Models.resnet18(1, 10);
    }

    /// <summary>The embedded training split, decompressed once per test run.</summary>
    static readonly Lazy<(ResnetMnist.Data.Idx.Images Images, byte[] Labels)> Sample = new(() => (
        ResnetMnist.Data.Idx.ReadImages(Repo.Path("data", "MNIST", "raw", "train-images-idx3-ubyte.gz")),
        ResnetMnist.Data.Idx.ReadLabels(Repo.Path("data", "MNIST", "raw", "train-labels-idx1-ubyte.gz"))));

    /// <summary>The fixed input batch of the snapshots: the first 8 images of the embedded training set, bytes / 255.</summary>
    public static (Tensor X, Tensor Y) InputBatch(int count = 8, int start = 0, ScalarType dtype = ScalarType.Float32)
    {
        var (images, labels) = Sample.Value;
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
