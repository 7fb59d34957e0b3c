using ResnetMnist.Core;

namespace ResnetMnist.Data;

/// <summary>
/// Reads the pickled files of CIFAR-10 and CIFAR-100 as <c>torchvision.datasets.CIFAR10</c>/<c>CIFAR100</c> do
/// (<c>pickle.load(f, encoding="latin1")</c>): each batch a dict whose <c>data</c> is a uint8 N×3072 array (R, G, B
/// planes of 32×32, row-major) and whose label list (<see cref="CifarFiles.LabelKey"/>) holds one int per image; the
/// meta file a dict holding the class names under <see cref="CifarFiles.MetaKey"/>. Every key must be one the
/// published files hold, with the type they hold it in: <c>data</c> an array, <c>batch_label</c> a str,
/// <c>filenames</c> and <c>*_names</c> lists of str, <c>*labels</c> lists of ints, <c>num_*</c> ints ≥ 0. Pickles go
/// through <see cref="RestrictedUnpickler"/>: nothing in them is imported or called.
/// </summary>
public static class Cifar
{
    public const int Side = 32, Channels = 3, ImageBytes = Channels * Side * Side;

    /// <summary>One batch file: its images (N×3072 bytes, row-major) and labels.</summary>
    public sealed record Batch(int Count, byte[] Pixels, long[] Labels);

    /// <summary>A meta file: the class names, and CIFAR-10's two counts (null where absent).</summary>
    public sealed record Meta(IReadOnlyList<string> LabelNames, long? NumCasesPerBatch, long? NumVis);

    /// <summary>Reads one batch file of <paramref name="files"/>' format.</summary>
    public static Batch ReadBatch(CifarFiles files, string path)
    {
        var what = $"a {files.Title} batch";
        var dict = ReadDict(path, what, files.BatchKeys);
        if (!dict.TryGet("data", out var dataObj)) throw new DataException($"{path}: not {what} (no 'data' key)");
        if (dataObj is not NdArrayU8 { Built: true } arr)
            throw new DataException($"{path}: 'data' is a {RestrictedUnpickler.Describe(dataObj)}; expected a uint8 numpy array of N×{ImageBytes}");
        if (arr.Shape.Length != 2 || arr.Shape[1] != ImageBytes)
            throw new DataException($"{path}: 'data' has shape ({string.Join(", ", arr.Shape)}); expected N×{ImageBytes} (3×32×32 images)");
        int count = (int)arr.Shape[0];
        var pixels = arr.Data;
        if (arr.Fortran && count > 1)
        {
            // Column-major: element (n, k) sits at k*N + n. numpy reads it the same either way; make it row-major.
            pixels = new byte[arr.Data.Length];
            for (int k = 0; k < ImageBytes; k++)
                for (int i = 0; i < count; i++) pixels[(long)i * ImageBytes + k] = arr.Data[(long)k * count + i];
        }
        CheckTypes(path, dict);
        if (!dict.TryGet(files.LabelKey, out _)) throw new DataException($"{path}: not {what} (no '{files.LabelKey}' list)");
        var list = ListOf<long>(path, dict, files.LabelKey, "a list of ints");
        if (list.Count != count)
            throw new DataException($"{path}: {count} images but {list.Count} labels");
        var labels = new long[count];
        for (int i = 0; i < count; i++) labels[i] = (long)list[i]!;
        return new Batch(count, pixels, labels);
    }

    /// <summary>Reads a meta file of <paramref name="files"/>' format (<c>batches.meta</c>, <c>meta</c>).</summary>
    public static Meta ReadMeta(CifarFiles files, string path)
    {
        var what = $"{files.Title} metadata";
        var dict = ReadDict(path, what, files.MetaKeys);
        if (!dict.TryGet(files.MetaKey, out _)) throw new DataException($"{path}: not {what} (no list '{files.MetaKey}')");
        CheckTypes(path, dict);
        var names = ListOf<string>(path, dict, files.MetaKey, "a list of str").Cast<string>().ToList();
        long? Count(string key) => dict.TryGet(key, out var v) ? (long)v! : null;
        return new Meta(names, Count("num_cases_per_batch"), Count("num_vis"));
    }

    /// <summary>Each value has the type the published files give its key (see the class summary).</summary>
    static void CheckTypes(string path, PyDict dict)
    {
        foreach (var (key, value) in dict.Items)
        {
            var k = (string)key!;
            if (k == "batch_label" && value is not string)
                throw new DataException($"{path}: 'batch_label' is a {RestrictedUnpickler.Describe(value)}; expected a str");
            if (k == "filenames" || k.EndsWith("_names", StringComparison.Ordinal)) ListOf<string>(path, dict, k, "a list of str");
            if (k.EndsWith("labels", StringComparison.Ordinal)) ListOf<long>(path, dict, k, "a list of ints");
            if (k.StartsWith("num_", StringComparison.Ordinal) && value is not (long and >= 0))
                throw new DataException($"{path}: '{k}' is {(value is long n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"a {RestrictedUnpickler.Describe(value)}")}; expected an int >= 0");
        }
    }

    /// <summary>The pickled dict of a CIFAR file, every key a str among <paramref name="allowed"/>.</summary>
    static PyDict ReadDict(string path, string what, IReadOnlyList<string> allowed)
    {
        var dict = RestrictedUnpickler.Load(path) as PyDict
            ?? throw new DataException($"{path}: not {what} (the pickle holds no dict)");
        foreach (var (key, _) in dict.Items)
            if (key is not string k || !allowed.Contains(k))
                throw new DataException($"{path}: key {(key is string s ? $"'{Printable.Escape(s, 60)}'" : RestrictedUnpickler.Describe(key))} is not part of {what}; allowed: {string.Join(", ", allowed)}");
        return dict;
    }

    static List<object?> ListOf<T>(string path, PyDict dict, string key, string expected)
    {
        if (!dict.TryGet(key, out var v)) return [];
        if (v is not List<object?> list) throw new DataException($"{path}: '{key}' is a {RestrictedUnpickler.Describe(v)}; expected {expected}");
        for (int i = 0; i < list.Count; i++)
            if (list[i] is not T) throw new DataException($"{path}: {key}[{i}] is a {RestrictedUnpickler.Describe(list[i])}; expected {expected}");
        return list;
    }
}
