using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>Format of a weights file, found from its first bytes (never from its name).</summary>
public enum WeightsFormat
{
    /// <summary><c>torch.save</c>'s zip format (PyTorch ≥ 1.6): <c>archive/data.pkl</c> + <c>archive/data/N</c>.</summary>
    TorchZip,
    /// <summary>Hugging Face safetensors: 8-byte header length, JSON header, raw data.</summary>
    Safetensors,
}

/// <summary>
/// Reads a state_dict from a <c>.pth</c> (zip pickle) or <c>.safetensors</c> file through TorchSharp.PyBridge, after
/// checks that turn every bad file into a <see cref="WeightsFileException"/> whose message starts with the path:
/// directories, unknown or legacy formats, truncated or corrupt files, pickles that reference foreign globals
/// (refused before unpickling; PyBridge itself never executes them either) and whole pickled models.
/// </summary>
public static class WeightsFile
{
    /// <summary>The message (after the path) for a <c>torch.save(model)</c> file.</summary>
    public const string WholeModelMessage =
        "this file holds a whole pickled model, not a state_dict; save one with torch.save(model.state_dict(), path)";

    /// <summary>Detects the format, or throws <see cref="WeightsFileException"/>.</summary>
    public static WeightsFormat DetectFormat(string path)
    {
        if (Directory.Exists(path))
            throw new WeightsFileException(path, "is a directory; expected a .pth (torch.save zip) or .safetensors file");
        if (!File.Exists(path))
            throw new WeightsFileException(path, "file not found");
        Span<byte> head = stackalloc byte[9];
        int n;
        using (var fs = File.OpenRead(path)) n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
            return WeightsFormat.TorchZip;
        if (n >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5)
            throw new WeightsFileException(path,
                "is a plain (legacy, non-zip) pickle; only torch.save's zip format (PyTorch >= 1.6 default) and safetensors are read. " +
                "Re-save it with torch.save(state_dict, path) in a recent PyTorch");
        if (n == 9 && head[8] == '{')
            return WeightsFormat.Safetensors;
        throw new WeightsFileException(path, n == 0
            ? "file is empty"
            : "is neither a torch.save zip file (.pth) nor a safetensors file (unrecognised first bytes)");
    }

    /// <summary>Reads every tensor of the file (CPU, the file's dtypes), keys in file order where the format keeps one.</summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        var format = DetectFormat(path);
        return format == WeightsFormat.TorchZip ? ReadTorchZip(path) : ReadSafetensors(path);
    }

    /// <summary>Keys, shapes and dtypes without reading tensor data where the format allows (safetensors); .pth files are read.</summary>
    public static List<(string Key, long[] Shape, string DType)> ReadIndex(string path)
    {
        var format = DetectFormat(path);
        if (format == WeightsFormat.Safetensors)
            return SafetensorsHeader(path).Select(e => (e.Key, e.Shape, e.DType)).ToList();
        var sd = ReadTorchZip(path);
        try { return sd.Select(kv => (kv.Key, kv.Value.shape, kv.Value.dtype.ToString())).ToList(); }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }

    static Dictionary<string, Tensor> ReadTorchZip(string path)
    {
        byte[] pickle;
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl")
                ?? throw new WeightsFileException(path, "zip file has no data.pkl: not written by torch.save");
            using var ms = new MemoryStream();
            using (var s = pkl.Open()) s.CopyTo(ms);
            pickle = ms.ToArray();
            // Every entry must be readable to its end (catches truncated or corrupt members early).
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                s.CopyTo(Stream.Null);
            }
        }
        catch (WeightsFileException) { throw; }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new WeightsFileException(path, $"truncated or corrupt zip (.pth) file: {e.Message}", e);
        }

        IReadOnlyList<string> globals;
        try { globals = PickleGlobals.Scan(pickle); }
        catch (InvalidDataException e) { throw new WeightsFileException(path, $"corrupt data.pkl: {e.Message}", e); }

        if (globals.Any(PickleGlobals.IsWholeModelGlobal))
            throw new WeightsFileException(path, WholeModelMessage);
        var foreign = globals.Where(g => !PickleGlobals.IsStateDictGlobal(g)).ToList();
        if (foreign.Count > 0)
            throw new WeightsFileException(path,
                $"refused: the pickle references {string.Join(", ", foreign)}, which a state_dict never does " +
                "(loading it in PyTorch would run that code); nothing was executed");

        System.Collections.Hashtable table;
        try { table = PyTorchUnpickler.UnpickleStateDict(path); }
        catch (Exception e)
        {
            throw new WeightsFileException(path, $"cannot read the state_dict: {e.Message}", e);
        }
        var unordered = new Dictionary<string, Tensor>();
        foreach (System.Collections.DictionaryEntry kv in table)
        {
            if (kv.Key is string k && kv.Value is Tensor t) unordered[k] = t;
            else throw new WeightsFileException(path, $"entry '{kv.Key}' is not a tensor: not a state_dict");
        }
        // The unpickler's table has no order: give resnet18's keys in torchvision's order, then any others sorted.
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, _) in Resnet18Layout.Expected())
            if (unordered.Remove(key, out var t)) result[key] = t;
        foreach (var key in unordered.Keys.Order(StringComparer.Ordinal)) result[key] = unordered[key];
        if (result.Count == 0) throw new WeightsFileException(path, "holds no tensors");
        return result;
    }

    internal sealed record SafetensorsEntry(string Key, string DType, long[] Shape, long Begin, long End);

    static readonly Dictionary<string, int> SafetensorsSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    internal static List<SafetensorsEntry> SafetensorsHeader(string path)
    {
        long length = new FileInfo(path).Length;
        using var fs = File.OpenRead(path);
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > (ulong)(length - 8))
            throw new WeightsFileException(path, $"truncated safetensors file: header says {headerLen} bytes but the file has {length} bytes");
        var header = new byte[headerLen];
        fs.ReadExactly(header);
        var entries = new List<SafetensorsEntry>();
        long dataLength = length - 8 - (long)headerLen;
        try
        {
            using var doc = JsonDocument.Parse(header);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                var dtype = p.Value.GetProperty("dtype").GetString()!;
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                var offs = p.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                if (!SafetensorsSizes.TryGetValue(dtype, out int size))
                    throw new WeightsFileException(path, $"tensor '{p.Name}' has unsupported dtype {dtype}");
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * size;
                if (offs.Length != 2 || offs[1] - offs[0] != bytes)
                    throw new WeightsFileException(path, $"corrupt safetensors header: tensor '{p.Name}' offsets do not match its shape");
                if (offs[1] > dataLength)
                    throw new WeightsFileException(path,
                        $"truncated safetensors file: tensor '{p.Name}' ends at data byte {offs[1]} but only {dataLength} data bytes are present");
                entries.Add(new(p.Name, dtype, shape, offs[0], offs[1]));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new WeightsFileException(path, $"corrupt safetensors header: {e.Message}", e);
        }
        return entries;
    }

    static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        var index = SafetensorsHeader(path);
        Dictionary<string, Tensor> loaded;
        try { loaded = Safetensors.LoadStateDict(path); }
        catch (Exception e) { throw new WeightsFileException(path, $"cannot read the safetensors file: {e.Message}", e); }
        // Keep the header's order (the loader returns a dictionary in its own order).
        var result = new Dictionary<string, Tensor>();
        foreach (var e in index.OrderBy(e => e.Begin)) result[e.Key] = loaded[e.Key];
        return result;
    }
}
