using System.Collections;
using System.IO.Compression;
using ResnetMnist.Core;
using ResnetMnist.Data;
using TorchSharp.PyBridge;

namespace ResnetMnist.Weights;

/// <summary>
/// The one reader of PyTorch zip files (<c>torch.save</c>: pretrained weights, checkpoints, optimizer state). It picks
/// the pickle PyTorch itself would unpickle — <c>torch.load</c> takes the folder of the archive's first entry as the
/// record prefix and reads <c>&lt;prefix&gt;/data.pkl</c> and <c>&lt;prefix&gt;/data/&lt;key&gt;</c> — refuses archives
/// where another reader could pick something else (a second <c>data.pkl</c>, entries outside the prefix folder, names
/// that escape it, duplicate names), checks that pickle's globals against the state_dict allow-list and its tensors
/// against their storages, and hands the unpickler a fresh in-memory archive holding exactly those bytes. Every read
/// is capped, so a small file cannot make it allocate much.
/// </summary>
public sealed class TorchArchive
{
    /// <summary>Largest file accepted.</summary>
    public const long MaxFileBytes = 4L << 30;
    /// <summary>Most entries in the zip (resnet18's state_dict has about 125).</summary>
    public const int MaxEntries = 65_536;
    /// <summary>Largest <c>data.pkl</c> once decompressed (resnet18's is about 15 KB).</summary>
    public const long MaxPickleBytes = 64L << 20;
    /// <summary>Most tensor bytes in one file.</summary>
    public const long MaxTensorBytes = 4L << 30;
    /// <summary>Tensor bytes may exceed the file's size by at most this factor (torch.save stores them uncompressed).</summary>
    public const int MaxExpansion = 16;

    /// <summary>The file (for messages).</summary>
    public string Path { get; }
    /// <summary>The record prefix (<c>archive</c> for torch.save files).</summary>
    public string Prefix { get; }
    /// <summary>The exact bytes of <c>&lt;prefix&gt;/data.pkl</c>.</summary>
    public byte[] Pickle { get; }
    /// <summary>What the pickle builds.</summary>
    public PickleSummary Summary { get; }
    readonly Dictionary<string, byte[]> _storages;

    TorchArchive(string path, string prefix, byte[] pickle, PickleSummary summary, Dictionary<string, byte[]> storages)
        => (Path, Prefix, Pickle, Summary, _storages) = (path, prefix, pickle, summary, storages);

    /// <summary>The message (after the path) for a <c>torch.save(model)</c> file.</summary>
    public const string WholeModelMessage =
        "this file holds a whole pickled model, not a state_dict; save one with torch.save(model.state_dict(), path)";

    /// <summary>Reads and checks <paramref name="path"/> (a regular file); every problem is a <see cref="WeightsFileException"/>.</summary>
    public static TorchArchive Read(string path)
    {
        using var fs = InputFiles.OpenRead(path, "a torch.save zip file", MaxFileBytes, m => new WeightsFileException(path, m));
        return Read(fs, path);
    }

    /// <summary>Reads and checks a seekable stream; <paramref name="name"/> names it in messages.</summary>
    public static TorchArchive Read(Stream stream, string name)
    {
        WeightsFileException Fail(string m, Exception? inner = null) => new(name, m, inner);
        if (!stream.CanSeek) throw Fail("cannot be read: not a seekable file");
        long length = stream.Length;
        if (length > MaxFileBytes) throw Fail($"is {InputFiles.Size(length)}; allowed: at most {InputFiles.Size(MaxFileBytes)}");
        Span<byte> head = stackalloc byte[4];
        stream.Position = 0;
        if (stream.ReadAtLeast(head, 4, throwOnEndOfStream: false) < 4 || head[0] != 'P' || head[1] != 'K' || head[2] != 3 || head[3] != 4)
            throw Fail("not a readable PyTorch state_dict: not a zip file (torch.save's format)");
        stream.Position = 0;
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            var entries = zip.Entries;
            if (entries.Count == 0) throw Fail("the zip file is empty; expected torch.save's archive/data.pkl");
            if (entries.Count > MaxEntries) throw Fail($"the zip file has {entries.Count} entries; allowed: at most {MaxEntries}");

            // torch.load (PyTorchStreamReader): the prefix is the first entry's name up to its first '/'.
            var first = entries[0].FullName;
            int slash = first.IndexOf('/');
            if (slash <= 0) throw Fail($"the first zip entry '{Clip(first)}' is not inside a folder; torch.save puts every entry under one folder (archive/)");
            var prefix = first[..slash];
            var pklName = prefix + "/data.pkl";
            var names = new HashSet<string>(StringComparer.Ordinal);
            ZipArchiveEntry? pkl = null;
            foreach (var e in entries)
            {
                var n = e.FullName;
                if (!names.Add(n)) throw Fail($"the zip file holds two entries named '{Clip(n)}'; refused as ambiguous");
                if (n.StartsWith('/') || n.Contains('\\') || n.Contains(':') || n.Split('/').Any(s => s is ".." or "."))
                    throw Fail($"zip entry '{Clip(n)}' escapes the archive folder; refused");
                if (!n.StartsWith(prefix + "/", StringComparison.Ordinal))
                    throw Fail($"zip entry '{Clip(n)}' is outside the archive folder '{prefix}/' that torch.load reads; refused as ambiguous");
                if (n == pklName) pkl = e;
                else if (n.EndsWith("data.pkl", StringComparison.Ordinal))
                    throw Fail($"the zip file holds another pickle '{Clip(n)}' besides {pklName}, the one torch.load reads; refused as ambiguous");
            }
            if (pkl is null) throw Fail($"the zip file has no {pklName}: not written by torch.save");

            var pickle = ReadEntry(pkl, MaxPickleBytes, exact: null, Fail);
            PickleSummary summary;
            try { summary = StateDictPickle.Analyze(pickle); }
            catch (PickleException e) when (e.Fault == PickleFault.Limit)
            {
                throw Fail($"refused: {pklName}: {e.What} (at byte {e.Offset}; nothing was executed)", e);
            }
            catch (PickleException e) { throw Fail($"corrupt {pklName}: {e.Message}", e); }
            if (summary.Globals.Any(StateDictPickle.IsWholeModelGlobal)) throw Fail(WholeModelMessage);
            var foreign = summary.Globals.Where(g => !StateDictPickle.IsStateDictGlobal(g)).ToList();
            if (foreign.Count > 0)
                throw Fail($"refused: the pickle references {string.Join(", ", foreign.Take(8).Select(g => Printable.Escape(g, 120)))}" +
                    $"{(foreign.Count > 8 ? $" and {foreign.Count - 8} more" : "")}, which a state_dict never does " +
                    "(loading it in PyTorch would run that code); nothing was executed; allowed: collections.OrderedDict, " +
                    "torch._utils._rebuild_tensor(_v2), torch.*Storage, torch.Size, torch.device");

            long total = 0;
            foreach (var s in summary.Storages) total += s.Bytes;
            long budget = Math.Min(MaxTensorBytes, length * MaxExpansion + (1L << 20));
            if (total > budget)
                throw Fail($"its tensors need {InputFiles.Size(total)}, more than allowed for a {InputFiles.Size(length)} file " +
                    $"(at most {MaxExpansion} × the file size, and {InputFiles.Size(MaxTensorBytes)})");
            var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var s in summary.Storages)
            {
                var entry = zip.GetEntry($"{prefix}/data/{s.Key}")
                    ?? throw Fail($"the pickle refers to storage '{s.Key}' but {prefix}/data/{s.Key} is missing");
                storages[s.Key] = ReadEntry(entry, s.Bytes, exact: s.Bytes, Fail);
            }
            return new TorchArchive(name, prefix, pickle, summary, storages);
        }
        catch (WeightsFileException) { throw; }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or NotSupportedException)
        {
            throw Fail($"not a readable PyTorch state_dict: truncated or corrupt zip file ({FirstLine(e.Message)})", e);
        }
    }

    static byte[] ReadEntry(ZipArchiveEntry e, long max, long? exact, Func<string, Exception?, WeightsFileException> fail)
    {
        using var s = e.Open();
        if (exact is long size && size <= Array.MaxLength)
        {
            // Straight into an array of the declared size: a growing MemoryStream would allocate about twice that
            // in discarded buffers, and ToArray a second copy (for a 90 MB optimizer state, ~270 MB of garbage).
            var buffer = new byte[size];
            long got = InputFiles.CopyCapped(s, new MemoryStream(buffer, writable: true), size, () => fail(
                $"zip entry '{Clip(e.FullName)}' holds more than the {size} bytes its tensor storage declares", null));
            if (got != size) throw fail($"zip entry '{Clip(e.FullName)}' holds {got} bytes but its tensor storage declares {size}", null);
            return buffer;
        }
        using var ms = new MemoryStream();
        InputFiles.CopyCapped(s, ms, max, () => fail(exact is null
            ? $"zip entry '{Clip(e.FullName)}' decompresses to more than {InputFiles.Size(max)}; allowed: at most {InputFiles.Size(max)}"
            : $"zip entry '{Clip(e.FullName)}' holds more than the {exact} bytes its tensor storage declares", null));
        if (exact is long n && ms.Length != n)
            throw fail($"zip entry '{Clip(e.FullName)}' holds {ms.Length} bytes but its tensor storage declares {n}", null);
        return ms.ToArray();
    }

    /// <summary>
    /// A new zip holding only <c>archive/data.pkl</c> (the checked pickle, byte for byte) and the storages it refers to:
    /// what the unpickler is given, so that it cannot read any other entry of the original file. It is written to a
    /// scratch file deleted when the stream is closed, so that no second copy of the tensors is held in memory.
    /// </summary>
    public Stream SanitizedZip()
    {
        var file = ScratchFile.Create();
        try
        {
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true))
            {
                void Add(string name, byte[] bytes)
                {
                    var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
                    using var s = e.Open();
                    s.Write(bytes);
                }
                Add("archive/data.pkl", Pickle);
                Add("archive/version", "3\n"u8.ToArray());
                foreach (var (key, bytes) in _storages) Add($"archive/data/{key}", bytes);
            }
            file.Position = 0;
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Unpickles the state_dict from <see cref="SanitizedZip"/>.</summary>
    public Hashtable Unpickle()
    {
        using var zip = SanitizedZip();
        try { return PyTorchUnpickler.UnpickleStateDict(zip); }
        catch (Exception e) { throw new WeightsFileException(Path, $"not a readable PyTorch state_dict ({FirstLine(e.Message)})", e); }
    }

    /// <summary>The first line of a message (libtorch appends C++ frames after it).</summary>
    public static string FirstLine(string message)
    {
        int cut = message.IndexOfAny(['\r', '\n']);
        return cut < 0 ? message : message[..cut];
    }

    static string Clip(string s) => Printable.Escape(s, 80);
}
