using System.Formats.Tar;
using System.IO.Compression;
using ResnetMnist.Core;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>One CIFAR-10 split: <see cref="Pixels"/> N×3×32×32 bytes (CHW, as torchvision's array before its HWC transpose), <see cref="Labels"/> N int64.</summary>
public sealed class Cifar10Split(Tensor pixels, Tensor labels, IReadOnlyList<string> classes, string source) : IDisposable
{
    public Tensor Pixels { get; } = pixels;
    public Tensor Labels { get; } = labels;
    /// <summary>Class names from <c>batches.meta</c>'s <c>label_names</c>.</summary>
    public IReadOnlyList<string> Classes { get; } = classes;
    public int Count => (int)Labels.shape[0];
    /// <summary>The folder the split was read from.</summary>
    public string Source { get; } = source;
    public void Dispose() { Pixels.Dispose(); Labels.Dispose(); }
}

/// <summary>
/// Reads CIFAR-10 as <c>torchvision.datasets.CIFAR10</c> does: <c>ROOT/cifar-10-batches-py/</c>, train = data_batch_1..5
/// concatenated in order, test = test_batch; each file a pickled dict whose <c>data</c> is a uint8 N×3072 array (R, G, B
/// planes of 32×32, row-major) and whose <c>labels</c> (or <c>fine_labels</c>) is a list of ints; class names from
/// <c>batches.meta</c>. Pickles go through <see cref="RestrictedUnpickler"/>: nothing in them is imported or called.
/// Also extracts the published <c>cifar-10-python.tar.gz</c> safely.
/// </summary>
public static class Cifar10
{
    public const int Side = 32, Channels = 3, ImageBytes = Channels * Side * Side;

    /// <summary>One batch file: its images (N×3072 bytes, row-major) and labels.</summary>
    public sealed record Batch(int Count, byte[] Pixels, long[] Labels);

    /// <summary>
    /// Loads a split from <paramref name="root"/>. Labels must lie in 0..<paramref name="numClasses"/>-1.
    /// <paramref name="limit"/> keeps the first N images.
    /// </summary>
    public static Cifar10Split Load(string root, bool train, int numClasses = 10, int? limit = null, Device? device = null)
    {
        // The tool's own reader (Cifar10Files.Read: the batch files in torchvision's order, the archive extracted
        // first when only it is there), plus the class names of batches.meta.
        var files = Cifar10Files.Cifar10;
        var raw = files.Read(root, train, Channels, Side, Side);
        raw.CheckLabels(numClasses);
        var metaPath = Path.Combine(files.BatchDir(root), files.MetaName);
        if (!Path.Exists(metaPath)) throw Missing(files, root, metaPath);
        var classes = ReadClasses(metaPath);

        int n = Math.Min(limit ?? raw.Count, raw.Count);
        using var scope = NewDisposeScope();
        var x = tensor(raw.Pixels.AsSpan(0, n * ImageBytes).ToArray(), new long[] { n, Channels, Side, Side });
        var y = tensor(raw.Labels.AsSpan(0, n).ToArray(), new long[] { n }).to_type(ScalarType.Int64);
        var dev = device ?? CPU;
        return new Cifar10Split(x.to(dev).MoveToOuterDisposeScope(), y.to(dev).MoveToOuterDisposeScope(), classes, files.BatchDir(root));
    }

    static DataException Missing(Cifar10Files files, string root, string path) =>
        new($"{path}: file not found; put torchvision's {files.Folder} folder in {root}, or its {files.ArchiveName} ({files.Url}) there and extract it");

    /// <summary>Keys a batch file may hold (the published ones: <c>batch_label</c>, <c>labels</c>, <c>data</c>, <c>filenames</c>; CIFAR-100's label lists).</summary>
    public static readonly IReadOnlyList<string> BatchKeys = ["data", "labels", "fine_labels", "coarse_labels", "batch_label", "filenames"];
    /// <summary>Keys <c>batches.meta</c> may hold (the published one holds exactly these).</summary>
    public static readonly IReadOnlyList<string> MetaKeys = ["label_names", "num_cases_per_batch", "num_vis"];

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

    /// <summary>Reads one batch file (<c>data</c> uint8 N×3072 and <c>labels</c>/<c>fine_labels</c>; <c>batch_label</c> a str and <c>filenames</c> a list of str where present).</summary>
    public static Batch ReadBatch(string path)
    {
        const string what = "a CIFAR-10 batch";
        var dict = ReadDict(path, what, BatchKeys);
        if (!dict.TryGet("data", out var dataObj)) throw new DataException($"{path}: not a CIFAR-10 batch (no 'data' key)");
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
        if (dict.TryGet("batch_label", out var label) && label is not string)
            throw new DataException($"{path}: 'batch_label' is a {RestrictedUnpickler.Describe(label)}; expected a str");
        ListOf<string>(path, dict, "filenames", "a list of str");
        ListOf<long>(path, dict, "coarse_labels", "a list of ints");
        string key = dict.TryGet("labels", out _) ? "labels" : dict.TryGet("fine_labels", out _) ? "fine_labels"
            : throw new DataException($"{path}: not a CIFAR-10 batch (neither 'labels' nor 'fine_labels')");
        var list = ListOf<long>(path, dict, key, "a list of ints");
        if (list.Count != count)
            throw new DataException($"{path}: {count} images but {list.Count} labels");
        var labels = new long[count];
        for (int i = 0; i < count; i++) labels[i] = (long)list[i]!;
        return new Batch(count, pixels, labels);
    }

    /// <summary><c>batches.meta</c>: the class names, and the published file's two counts (null where absent).</summary>
    public sealed record Meta(IReadOnlyList<string> LabelNames, long? NumCasesPerBatch, long? NumVis);

    /// <summary>Reads <c>batches.meta</c>: a dict of <c>label_names</c> (list of str), <c>num_cases_per_batch</c> and <c>num_vis</c> (ints), nothing else.</summary>
    public static Meta ReadMeta(string path)
    {
        const string what = "CIFAR-10 metadata";
        var dict = ReadDict(path, what, MetaKeys);
        if (!dict.TryGet("label_names", out _)) throw new DataException($"{path}: not {what} (no list 'label_names')");
        var names = ListOf<string>(path, dict, "label_names", "a list of str").Cast<string>().ToList();
        long? Count(string key) => !dict.TryGet(key, out var v) ? null
            : v is long n and >= 0 ? n : throw new DataException($"{path}: '{key}' is {(v is long n2 ? n2.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"a {RestrictedUnpickler.Describe(v)}")}; expected an int >= 0");
        return new Meta(names, Count("num_cases_per_batch"), Count("num_vis"));
    }

    /// <summary>The class names in <c>batches.meta</c>.</summary>
    public static IReadOnlyList<string> ReadClasses(string path) => ReadMeta(path).LabelNames;

    /// <summary>Largest member extracted from the archive (the published batches are about 31 MB each).</summary>
    public const long MaxMemberBytes = 256L << 20;
    /// <summary>Most bytes extracted in all (the published archive unpacks to about 178 MB).</summary>
    public const long MaxExtractedBytes = 1L << 30;
    /// <summary>Most members (the published archive has 9).</summary>
    public const int MaxMembers = 64;

    /// <summary>
    /// Extracts <paramref name="archive"/> (the published <c>cifar-10-python.tar.gz</c>) into <paramref name="root"/>.
    /// Only regular files directly under <c>cifar-10-batches-py/</c> (and that folder's own entry) are accepted; an
    /// absolute name, a <c>..</c>, a link, a device or any other member refuses the whole archive, as do sizes over
    /// the limits. Files are written to a fresh folder beside the target and moved into place only once the whole
    /// archive has been read, so a refused or corrupt archive leaves nothing behind. With <paramref name="md5"/> the
    /// archive's md5 must match first (torchvision checks <see cref="Cifar10Files.ArchiveMd5"/>).
    /// </summary>
    public static void Extract(string archive, string root, string? md5 = null)
    {
        long length = InputFiles.RequireRegularFile(archive, "a .tar.gz archive", MaxExtractedBytes, m => new DataException($"{archive}: {m}"));
        if (length < 18) throw new DataException($"{archive}: truncated or corrupt gzip data ({length} bytes, shorter than a gzip header and trailer)");
        if (md5 is not null)
        {
            var actual = Cifar10Files.Md5Of(archive);
            if (!string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                throw new DataException($"{archive}: md5 {actual} does not match the expected {md5}; download it again");
        }
        var folder = Cifar10Files.Cifar10.Folder;
        Directory.CreateDirectory(root);
        var staging = Path.Combine(root, $".{folder}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var names = new List<string>();
            long total = 0;
            using (var file = InputFiles.OpenRead(archive, "a .tar.gz archive", MaxExtractedBytes, m => new DataException($"{archive}: {m}")))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
            using (var counted = new CountingStream(gz))
            using (var tar = new TarReader(counted))
            {
                TarEntry? e;
                while ((e = tar.GetNextEntry()) is not null)
                {
                    var member = e.Name;
                    DataException Refuse(string why) => new($"{archive}: member '{Clip(member)}' {why}; refused (a CIFAR-10 archive holds only the files of {folder}/)");
                    if (names.Count >= MaxMembers) throw new DataException($"{archive}: more than {MaxMembers} members; refused");
                    if (member.Length == 0 || member.StartsWith('/') || member.Contains('\\') || member.Contains('\0') || (member.Length > 1 && member[1] == ':'))
                        throw Refuse("has an absolute or malformed name");
                    var parts = member.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
                    if (parts.Any(p => p == "..")) throw Refuse("climbs out of the folder with '..'");
                    switch (e.EntryType)
                    {
                        case TarEntryType.Directory:
                            if (parts.Length == 1 && parts[0] == folder) continue;
                            throw Refuse("is a folder other than " + folder);
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                            break;
                        default:
                            throw Refuse($"is a {e.EntryType}, not a regular file");
                    }
                    if (parts.Length != 2 || parts[0] != folder) throw Refuse($"is not a file directly under {folder}/");
                    if (e.Length < 0 || e.Length > MaxMemberBytes) throw Refuse($"is {InputFiles.Size(e.Length)}; allowed: at most {InputFiles.Size(MaxMemberBytes)}");
                    total += e.Length;
                    if (total > MaxExtractedBytes) throw new DataException($"{archive}: unpacks to more than {InputFiles.Size(MaxExtractedBytes)}; refused");
                    if (names.Contains(parts[1])) throw Refuse("appears twice");
                    var target = Path.Combine(staging, parts[1]);
                    using (var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
                    {
                        if (e.DataStream is { } data) CopyExactly(data, output, e.Length, () => Refuse("is truncated"));
                        else if (e.Length != 0) throw Refuse("is truncated");
                    }
                    names.Add(parts[1]);
                }
                // GZipStream ends quietly on a cut-off file: drain it and check the trailer's ISIZE (length mod 2^32).
                var sink = new byte[1 << 16];
                while (counted.Read(sink, 0, sink.Length) > 0)
                    if (counted.Count > MaxExtractedBytes + (64L << 20))
                        throw new DataException($"{archive}: more than {InputFiles.Size(MaxExtractedBytes)} of data after the tar archive's end; refused");
                var trailer = new byte[4];
                file.Seek(-4, SeekOrigin.End);
                file.ReadExactly(trailer);
                if (BitConverter.ToUInt32(trailer) != (uint)counted.Count)
                    throw new DataException($"{archive}: truncated or corrupt gzip data (decompressed {counted.Count} bytes, the gzip trailer says otherwise); download it again");
            }
            var dest = Path.Combine(root, folder);
            Directory.CreateDirectory(dest);
            foreach (var n in names) File.Move(Path.Combine(staging, n), Path.Combine(dest, n), overwrite: true);
        }
        catch (InvalidDataException e) { throw new DataException($"{archive}: truncated or corrupt archive ({e.Message})", e); }
        catch (EndOfStreamException e) { throw new DataException($"{archive}: truncated archive", e); }
        catch (FormatException e) { throw new DataException($"{archive}: corrupt tar data ({e.Message})", e); }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { }
        }
    }

    static void CopyExactly(Stream from, Stream to, long length, Func<Exception> truncated)
    {
        var buffer = new byte[1 << 16];
        long left = length;
        while (left > 0)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) throw truncated();
            to.Write(buffer, 0, n);
            left -= n;
        }
    }

    /// <summary>
    /// When <c>ROOT/cifar-10-batches-py</c> is missing and <c>ROOT/cifar-10-python.tar.gz</c> is present, extracts it
    /// (md5 checked when <paramref name="checkMd5"/>); returns whether it extracted.
    /// </summary>
    public static bool ExtractIfNeeded(string root, bool checkMd5 = true)
    {
        var files = Cifar10Files.Cifar10;
        if (Directory.Exists(files.BatchDir(root)) || !File.Exists(files.ArchivePath(root))) return false;
        Extract(files.ArchivePath(root), root, checkMd5 ? files.ArchiveMd5 : null);
        return true;
    }

    /// <summary>Counts the bytes read through it.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }
        public override int Read(byte[] buffer, int offset, int count) { int n = inner.Read(buffer, offset, count); Count += n; return n; }
        public override int Read(Span<byte> buffer) { int n = inner.Read(buffer); Count += n; return n; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    static string Clip(string s) => Printable.Escape(s, 80);
}
