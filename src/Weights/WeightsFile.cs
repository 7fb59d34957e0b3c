using ResnetMnist.Model;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using ResnetMnist.Data;
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
    public const string WholeModelMessage = TorchArchive.WholeModelMessage;

    /// <summary>Detects the format, or throws <see cref="WeightsFileException"/>.</summary>
    public static WeightsFormat DetectFormat(string path)
    {
        Span<byte> head = stackalloc byte[9];
        int n;
        using (var fs = InputFiles.OpenRead(path, "a .pth (torch.save zip) or .safetensors file", TorchArchive.MaxFileBytes,
                   m => new WeightsFileException(path, m)))
            n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
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
            return SafetensorsHeader(path).Select(e => (e.Key, e.Shape, DTypeName(e.DType))).ToList();
        var sd = ReadTorchZip(path);
        try { return sd.Select(kv => (kv.Key, kv.Value.shape, DTypeName(kv.Value.dtype.ToString()))).ToList(); }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }

    /// <summary>One name per dtype for both formats, as PyTorch prints it without <c>torch.</c>: <c>float32</c>, <c>int64</c>, ...</summary>
    public static string DTypeName(string name) => name switch
    {
        "F64" or "Float64" => "float64",
        "F32" or "Float32" => "float32",
        "F16" or "Float16" => "float16",
        "BF16" or "BFloat16" => "bfloat16",
        "I64" or "Int64" => "int64",
        "I32" or "Int32" => "int32",
        "I16" or "Int16" => "int16",
        "I8" or "Int8" => "int8",
        "U8" or "Byte" => "uint8",
        "BOOL" or "Bool" => "bool",
        _ => name.ToLowerInvariant(),
    };

    static Dictionary<string, Tensor> ReadTorchZip(string path)
    {
        var unordered = StateDict(TorchArchive.Read(path));
        // The unpickler's table has no order: give the keys of the architecture they fit best in torchvision's order,
        // then any others sorted.
        var result = new Dictionary<string, Tensor>();
        var arch = ArchSpecs.All.MaxBy(a => a.StateDictLayout().Count(e => unordered.ContainsKey(e.Key)))!;
        foreach (var (key, _) in arch.StateDictLayout())
            if (unordered.Remove(key, out var t)) result[key] = t;
        foreach (var key in unordered.Keys.Order(StringComparer.Ordinal)) result[key] = unordered[key];
        if (result.Count == 0) throw new WeightsFileException(path, "holds no tensors");
        return result;
    }

    /// <summary>
    /// The state_dict a checked archive holds (<see cref="TorchArchive.Unpickle"/>): every entry a name mapped to a
    /// tensor, else a <see cref="WeightsFileException"/> naming the key (<see cref="StateDictChecks.Tensors"/>). Keys in no
    /// particular order.
    /// </summary>
    public static Dictionary<string, Tensor> StateDict(TorchArchive archive)
    {
        var table = archive.Unpickle();
        try { return StateDictChecks.Tensors(table, archive.Path); }
        catch
        {
            foreach (System.Collections.DictionaryEntry kv in table) (kv.Value as Tensor)?.Dispose();
            throw;
        }
    }

    internal sealed record SafetensorsEntry(string Key, string DType, long[] Shape, long Begin, long End);

    static readonly Dictionary<string, int> SafetensorsSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>Largest safetensors JSON header accepted (resnet18's is about 10 KB).</summary>
    public const long MaxSafetensorsHeaderBytes = 16L << 20;

    /// <summary>
    /// Reads and checks a safetensors header: size within the file and <see cref="MaxSafetensorsHeaderBytes"/>, JSON object
    /// without duplicate keys, every dtype known, every shape non-negative, <c>data_offsets</c> inside the data section,
    /// matching dtype × shape, and not overlapping.
    /// </summary>
    internal static List<SafetensorsEntry> SafetensorsHeader(string path)
    {
        WeightsFileException Bad(string what) => new(path, $"corrupt safetensors header: {what}");
        using var fs = InputFiles.OpenRead(path, "a .safetensors file", TorchArchive.MaxFileBytes, m => new WeightsFileException(path, m));
        long length = fs.Length;
        if (length < 8) throw new WeightsFileException(path, $"truncated safetensors file ({length} bytes, shorter than its 8-byte header length)");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > (ulong)MaxSafetensorsHeaderBytes)
            throw new WeightsFileException(path, $"safetensors header of {headerLen} bytes; allowed: at most {InputFiles.Size(MaxSafetensorsHeaderBytes)}");
        if (headerLen > (ulong)(length - 8))
            throw new WeightsFileException(path, $"truncated safetensors file: header says {headerLen} bytes but the file has {length} bytes");
        var header = new byte[headerLen];
        fs.ReadExactly(header);
        var entries = new List<SafetensorsEntry>();
        long dataLength = length - 8 - (long)headerLen;
        try
        {
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw Bad($"key '{p.Name}' appears twice; allowed: each tensor once");
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object || p.Value.EnumerateObject().Any(m => m.Value.ValueKind != JsonValueKind.String))
                        throw Bad("__metadata__ is not a mapping of strings to strings");
                    continue;
                }
                if (p.Value.ValueKind != JsonValueKind.Object) throw Bad($"tensor '{p.Name}' is not a JSON object");
                var dtype = p.Value.TryGetProperty("dtype", out var dt) && dt.ValueKind == JsonValueKind.String ? dt.GetString()! : null;
                if (dtype is null || !SafetensorsSizes.TryGetValue(dtype, out int size))
                    throw Bad($"tensor '{p.Name}' has dtype {(dtype is null ? "null" : $"'{dtype}'")}; allowed: {string.Join(", ", SafetensorsSizes.Keys)}");
                var shape = Ints(p, "shape", -1);
                if (shape.Length > StateDictPickle.MaxDims) throw Bad($"tensor '{p.Name}' has {shape.Length} dimensions; allowed: at most {StateDictPickle.MaxDims}");
                var offs = Ints(p, "data_offsets", 2);
                long bytes;
                try { bytes = checked(shape.Aggregate(1L, (a, b) => a * b) * size); }
                catch (OverflowException) { throw Bad($"tensor '{p.Name}' shape [{string.Join(", ", shape)}] overflows"); }
                if (offs[1] < offs[0] || offs[1] - offs[0] != bytes)
                    throw Bad($"tensor '{p.Name}' data_offsets [{offs[0]}, {offs[1]}] do not match its dtype and shape ({bytes} bytes)");
                if (offs[1] > dataLength)
                    throw new WeightsFileException(path,
                        $"truncated safetensors file: tensor '{p.Name}' ends at data byte {offs[1]} but only {dataLength} data bytes are present");
                entries.Add(new(p.Name, dtype, shape, offs[0], offs[1]));
            }
        }
        catch (JsonException e) { throw Bad(TorchArchive.FirstLine(e.Message)); }
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw Bad($"tensors '{sorted[i - 1].Key}' and '{sorted[i].Key}' overlap in the data section; allowed: disjoint data_offsets");
        return entries;

        long[] Ints(JsonProperty p, string field, int count)
        {
            if (!p.Value.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.Array)
                throw Bad($"tensor '{p.Name}' has no {field} list");
            var list = new List<long>();
            foreach (var x in v.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out var n) || n < 0)
                    throw Bad($"tensor '{p.Name}' {field} holds {x.GetRawText()}; allowed: integers >= 0");
                list.Add(n);
            }
            if (count >= 0 && list.Count != count) throw Bad($"tensor '{p.Name}' {field} has {list.Count} values; allowed: {count}");
            return list.ToArray();
        }
    }

    static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        var index = SafetensorsHeader(path);
        Dictionary<string, Tensor> loaded;
        try { loaded = Safetensors.LoadStateDict(path); }
        catch (Exception e) { throw new WeightsFileException(path, $"cannot read the safetensors file: {TorchArchive.FirstLine(e.Message)}", e); }
        // Keep the header's order (the loader returns a dictionary in its own order).
        var result = new Dictionary<string, Tensor>();
        foreach (var e in index.OrderBy(e => e.Begin)) result[e.Key] = loaded[e.Key];
        return result;
    }
}
