using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ResnetMnist.Data;

/// <summary>
/// A numpy array rebuilt from a pickle (made by <c>_reconstruct</c>, filled by BUILD): only one-byte unsigned
/// elements (<c>uint8</c>) are accepted. <see cref="Built"/> is false for one whose BUILD never came.
/// </summary>
public sealed class NdArrayU8
{
    /// <summary>Dimensions.</summary>
    public long[] Shape { get; internal set; } = [];
    /// <summary>Column-major data (numpy's <c>is_fortran</c>).</summary>
    public bool Fortran { get; internal set; }
    /// <summary>The raw elements, exactly product(Shape) bytes.</summary>
    public byte[] Data { get; internal set; } = [];
    public bool Built { get; internal set; }
}

/// <summary>
/// A pickle reader for the files CIFAR-10 ships (<c>pickle.load(f, encoding="latin1")</c> of dicts of numpy arrays,
/// lists, ints and strings), written by Python 2 (protocol 2: py2 <c>str</c> as BINSTRING/SHORT_BINSTRING) or
/// re-pickled by Python 3 (protocols 2 to 5: BINBYTES, BINUNICODE, FRAME, MEMOIZE, STACK_GLOBAL, <c>_codecs.encode</c>).
/// It builds real values (dicts as <see cref="PyDict"/>, lists, tuples as <c>object?[]</c>, <c>long</c>, <c>bool</c>,
/// <c>null</c>, <c>string</c> for text and py2 str, <c>byte[]</c> for bytes, <see cref="NdArrayU8"/>), and accepts
/// ONLY the globals those files name; any other global is refused when it is read, before anything could be called.
/// REDUCE works only on the allowed globals, BUILD only on arrays and dtypes with their state tuples. Every malformed
/// stream is a one-line <see cref="DataException"/> naming the file; nothing it allocates exceeds the file's length by
/// more than a constant factor (strings and bytes are slices of the file).
/// </summary>
public static class RestrictedUnpickler
{
    /// <summary>Globals a CIFAR-10 batch file may name.</summary>
    public static readonly IReadOnlySet<string> AllowedGlobals = new HashSet<string>
    {
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "_codecs.encode",
        // Protocol 5 pickles an array as _frombuffer(bytearray, dtype, shape, order).
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
    };

    /// <summary>Largest pickle file read (a published CIFAR-10 batch is about 31 MB).</summary>
    public const long MaxFileBytes = 512L << 20;
    /// <summary>Most dimensions an array may have.</summary>
    public const int MaxDims = 32;

    /// <summary>A pickled dict, keys in insertion order (a repeated key keeps its last value, as in Python).</summary>
    public sealed class PyDict
    {
        public List<(object? Key, object? Value)> Items { get; } = [];
        public bool TryGet(string key, out object? value)
        {
            for (int i = Items.Count - 1; i >= 0; i--)
                if (Items[i].Key is string k && k == key) { value = Items[i].Value; return true; }
            value = null;
            return false;
        }
    }

    sealed class Mark;
    sealed record Global(string Name);
    sealed class DType { public string Code = ""; public bool Built; }

    /// <summary>Reads and unpickles <paramref name="path"/>.</summary>
    public static object? Load(string path)
    {
        InputFiles.RequireRegularFile(path, "a pickle file", MaxFileBytes, m => new DataException($"{path}: {m}"));
        byte[] bytes;
        try { bytes = InputFiles.ReadAllBytes(path, "a pickle file", MaxFileBytes, m => new DataException($"{path}: {m}")); }
        catch (IOException e) { throw new DataException($"{path}: cannot be read ({e.Message})", e); }
        return Load(bytes, path);
    }

    /// <summary>Unpickles <paramref name="pickle"/>; <paramref name="name"/> starts every error message.</summary>
    public static object? Load(ReadOnlySpan<byte> pickle, string name)
    {
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();
        int pos = 0, at = 0;

        DataException Bad(string what) => new($"{name}: malformed pickle ({what} at byte {at})");
        int fileLength = pickle.Length;
        DataException Short(int i, long n) => new($"{name}: truncated pickle (needs {n} more bytes at byte {i}, the file has {fileLength})");
        ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, ref int i, long n)
        {
            if (n < 0 || n > p.Length - i) throw Short(i, n);
            var s = p.Slice(i, (int)n);
            i += (int)n;
            return s;
        }
        string Line(ReadOnlySpan<byte> p, ref int i)
        {
            int nl = p[i..].IndexOf((byte)'\n');
            if (nl < 0) throw new DataException($"{name}: truncated pickle (unterminated line at byte {i})");
            if (nl > 256) throw Bad("line longer than 256 bytes");
            var s = Encoding.ASCII.GetString(p.Slice(i, nl));
            i += nl + 1;
            return s;
        }
        long U(ReadOnlySpan<byte> b) { long v = 0; for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k]; return v; }
        long Len8(ReadOnlySpan<byte> b)
        {
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(b);
            return v > int.MaxValue ? throw Bad($"length {v} larger than the file") : (long)v;
        }
        object? Pop()
        {
            if (stack.Count == 0 || (marks.Count > 0 && stack.Count <= marks.Peek())) throw Bad("stack underflow");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        object? Top() => stack.Count == 0 || (marks.Count > 0 && stack.Count <= marks.Peek()) ? throw Bad("stack underflow") : stack[^1];
        List<object?> PopMark()
        {
            if (marks.Count == 0) throw Bad("no MARK before this opcode");
            int m = marks.Pop();
            var items = stack.GetRange(m, stack.Count - m);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        object? Get(long key) => memo.TryGetValue(key, out var v) ? v : throw Bad($"memo key {key} is not defined");
        void Push(object? v) => stack.Add(v);
        Global Resolve(string module, string attr)
        {
            var g = $"{module}.{attr}";
            if (!AllowedGlobals.Contains(g))
                throw new DataException($"{name}: refers to global '{Clip(g)}'; a CIFAR-10 batch file holds only numpy arrays, lists and dicts");
            return new Global(g);
        }
        T Container<T>(object? top, string op) where T : class => top as T ?? throw Bad($"{op} on a {Describe(top)}");

        while (true)
        {
            at = pos;
            if (pos >= pickle.Length) throw new DataException($"{name}: truncated pickle (no STOP opcode; the file ends at byte {pos})");
            byte op = pickle[pos++];
            switch (op)
            {
                case (byte)'.':                                                    // STOP
                {
                    if (stack.Count != 1 || marks.Count != 0) throw Bad("STOP with a malformed stack");
                    var result = stack[0];
                    return result is NdArrayU8 { Built: false } or DType or Global ? throw Bad($"the pickle's value is an unfinished {Describe(result)}") : result;
                }
                case 0x80:                                                         // PROTO
                {
                    long v = Take(pickle, ref pos, 1)[0];
                    if (v > 5) throw Bad($"pickle protocol {v}; allowed: 0 to 5");
                    break;
                }
                case 0x95: Take(pickle, ref pos, 8); break;                        // FRAME (a hint only)
                case (byte)'(': marks.Push(stack.Count); break;                    // MARK
                case (byte)'0': Pop(); break;                                      // POP
                case (byte)'1': PopMark(); break;                                  // POP_MARK
                case (byte)'2': Push(Top()); break;                                // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'I':
                {
                    var s = Line(pickle, ref pos);
                    if (s == "00") Push(false);
                    else if (s == "01") Push(true);
                    else Push(long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Bad($"malformed INT '{Clip(s)}'"));
                    break;
                }
                case (byte)'L':
                {
                    var s = Line(pickle, ref pos);
                    Push(long.TryParse(s.EndsWith('L') ? s[..^1] : s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Bad($"LONG '{Clip(s)}' outside 64 bits"));
                    break;
                }
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4))); break;
                case (byte)'K': Push(U(Take(pickle, ref pos, 1))); break;
                case (byte)'M': Push(U(Take(pickle, ref pos, 2))); break;
                case 0x8a: case 0x8b:                                              // LONG1, LONG4
                {
                    long n = op == 0x8a ? U(Take(pickle, ref pos, 1)) : BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4));
                    if (n > 8) throw Bad($"integer of {n} bytes; allowed: at most 8");
                    var b = Take(pickle, ref pos, n);
                    long v = 0;
                    for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k];
                    if (n > 0 && n < 8 && (b[^1] & 0x80) != 0) v -= 1L << (8 * (int)n);   // two's complement
                    Push(v);
                    break;
                }
                // py2 str (read as latin1 text, like encoding="latin1"), py3 str, py3 bytes.
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(pickle, ref pos, (uint)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4))))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))))); break;
                case (byte)'X': Push(Utf8(Take(pickle, ref pos, U(Take(pickle, ref pos, 4))), Bad)); break;
                case 0x8c: Push(Utf8(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))), Bad)); break;
                case 0x8d: Push(Utf8(Take(pickle, ref pos, Len8(Take(pickle, ref pos, 8))), Bad)); break;
                case (byte)'B': Push(Take(pickle, ref pos, U(Take(pickle, ref pos, 4))).ToArray()); break;
                case (byte)'C': Push(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))).ToArray()); break;
                case 0x8e: case 0x96: Push(Take(pickle, ref pos, Len8(Take(pickle, ref pos, 8))).ToArray()); break;   // BINBYTES8, BYTEARRAY8
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'}': Push(new PyDict()); break;
                case (byte)'t': Push(PopMark().ToArray()); break;
                case 0x85: { var a = Pop(); Push(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'l': Push(PopMark()); break;
                case (byte)'d':
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Bad("DICT with an odd number of items");
                    var d = new PyDict();
                    for (int k = 0; k < items.Count; k += 2) d.Items.Add((Key(items[k], Bad), items[k + 1]));
                    Push(d);
                    break;
                }
                case (byte)'a': { var v = Pop(); Container<List<object?>>(Top(), "APPEND").Add(v); break; }
                case (byte)'e': { var items = PopMark(); Container<List<object?>>(Top(), "APPENDS").AddRange(items); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); Container<PyDict>(Top(), "SETITEM").Items.Add((Key(k, Bad), v)); break; }
                case (byte)'u':
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Bad("SETITEMS with an odd number of items");
                    var d = Container<PyDict>(Top(), "SETITEMS");
                    for (int k = 0; k < items.Count; k += 2) d.Items.Add((Key(items[k], Bad), items[k + 1]));
                    break;
                }
                case (byte)'c':                                                    // GLOBAL
                {
                    var module = Line(pickle, ref pos);
                    var attr = Line(pickle, ref pos);
                    Push(Resolve(module, attr));
                    break;
                }
                case 0x93:                                                         // STACK_GLOBAL
                {
                    var attr = Pop(); var module = Pop();
                    if (module is not string m || attr is not string n) throw Bad("STACK_GLOBAL whose module or name is not a string");
                    Push(Resolve(m, n));
                    break;
                }
                case (byte)'R':                                                    // REDUCE
                {
                    var args = Pop();
                    var fn = Pop();
                    if (fn is not Global g) throw Bad($"REDUCE on a {Describe(fn)}");
                    Push(Reduce(g.Name, args, Bad));
                    break;
                }
                case (byte)'b':                                                    // BUILD
                {
                    var state = Pop();
                    Build(Top(), state, Bad);
                    break;
                }
                case (byte)'p':
                {
                    var s = Line(pickle, ref pos);
                    memo[long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Bad($"malformed memo key '{Clip(s)}'")] = Top();
                    break;
                }
                case (byte)'q': memo[U(Take(pickle, ref pos, 1))] = Top(); break;
                case (byte)'r': memo[U(Take(pickle, ref pos, 4))] = Top(); break;
                case 0x94: memo[memo.Count] = Top(); break;                        // MEMOIZE
                case (byte)'g':
                {
                    var s = Line(pickle, ref pos);
                    Push(Get(long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Bad($"malformed memo key '{Clip(s)}'")));
                    break;
                }
                case (byte)'h': Push(Get(U(Take(pickle, ref pos, 1)))); break;
                case (byte)'j': Push(Get(U(Take(pickle, ref pos, 4)))); break;
                default:
                    throw Bad(Opcodes.TryGetValue(op, out var opName)
                        ? $"opcode {opName} is not allowed in a CIFAR-10 batch file"
                        : $"unknown pickle opcode 0x{op:x2}");
            }
        }
    }

    /// <summary>Opcodes Python knows that these files never hold (named in the refusal).</summary>
    static readonly Dictionary<byte, string> Opcodes = new()
    {
        [(byte)'F'] = "FLOAT", [(byte)'G'] = "BINFLOAT", [(byte)'S'] = "STRING", [(byte)'V'] = "UNICODE", [(byte)'i'] = "INST",
        [(byte)'o'] = "OBJ", [0x81] = "NEWOBJ", [0x92] = "NEWOBJ_EX", [(byte)'P'] = "PERSID", [(byte)'Q'] = "BINPERSID",
        [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET",
        [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
    };

    static object? Key(object? k, Func<string, DataException> bad) =>
        k is string or long or bool or null ? k : throw bad($"dict key of type {Describe(k)}");

    static string Utf8(ReadOnlySpan<byte> b, Func<string, DataException> bad)
    {
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(b); }
        catch (DecoderFallbackException) { throw bad("text that is not UTF-8"); }
    }

    static object Reduce(string fn, object? args, Func<string, DataException> bad)
    {
        if (args is not object?[] a) throw bad($"REDUCE of {fn} with arguments that are not a tuple");
        switch (fn)
        {
            case "numpy.core.multiarray._reconstruct" or "numpy._core.multiarray._reconstruct":
                // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
                if (a.Length != 3 || a[0] is not Global { Name: "numpy.ndarray" })
                    throw bad($"{fn} with arguments other than (numpy.ndarray, shape, typecode)");
                return new NdArrayU8();
            case "numpy.dtype":
                // dtype('u1', align, copy); align/copy are bools (py3) or ints (py2).
                if (a.Length != 3 || a[0] is not string code || a[1] is not (bool or long) || a[2] is not (bool or long))
                    throw bad("numpy.dtype with arguments other than (code, align, copy)");
                if (code != "u1") throw bad($"array dtype '{Clip(code)}'; allowed: uint8 ('u1')");
                return new DType { Code = code };
            case "numpy.core.numeric._frombuffer" or "numpy._core.numeric._frombuffer":
            {
                if (a.Length != 4 || a[0] is not byte[] buffer || a[1] is not DType { Built: true } || a[3] is not ("C" or "F"))
                    throw bad($"{fn} with arguments other than (bytearray, uint8 dtype, shape, 'C' or 'F')");
                var array = new NdArrayU8();
                Fill(array, a[2], a[3] is "F", buffer, bad);
                return array;
            }
            case "_codecs.encode":
                // Python 3 pickles bytes under protocol 2 as _codecs.encode(text, 'latin1').
                if (a.Length != 2 || a[0] is not string text || a[1] is not ("latin1" or "latin-1"))
                    throw bad("_codecs.encode with arguments other than (text, 'latin1')");
                return Latin1Bytes(text, bad);
            default:
                throw bad($"REDUCE of {fn}");
        }
    }

    static byte[] Latin1Bytes(string text, Func<string, DataException> bad)
    {
        if (text.AsSpan().IndexOfAnyExceptInRange('\0', '\u00ff') >= 0) throw bad("bytes encoded as latin1 text hold a character above U+00FF");
        return Encoding.Latin1.GetBytes(text);
    }

    static void Build(object? target, object? state, Func<string, DataException> bad)
    {
        switch (target)
        {
            case DType d:
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]) of a plain dtype.
                if (d.Built) throw bad("BUILD on a dtype twice");
                if (state is not object?[] { Length: 8 or 9 } s || s[0] is not (3L or 4L) || s[1] is not ("|" or "<" or ">" or "=")
                    || s[2] is not null || s[3] is not null || s[4] is not null)
                    throw bad("dtype state other than a plain dtype's (version, byteorder, None, None, None, ...)");
                d.Built = true;
                return;
            case NdArrayU8 p:
            {
                // (version, shape, dtype, is_fortran, rawdata) or, from older numpy, without the version.
                if (p.Built) throw bad("BUILD on an array twice");
                if (state is not object?[] st || (st.Length != 5 && st.Length != 4)) throw bad("array state is not (version, shape, dtype, is_fortran, data)");
                if (st.Length == 5 && st[0] is not 1L) throw bad($"array state version {Describe(st[0])}; allowed: 1");
                var (shapeObj, dtypeObj, fortranObj, raw) = st.Length == 5 ? (st[1], st[2], st[3], st[4]) : (st[0], st[1], st[2], st[3]);
                if (dtypeObj is not DType { Built: true }) throw bad("array dtype is not a numpy.dtype");
                if (fortranObj is not (bool or long)) throw bad("array is_fortran is not a bool");
                byte[] data = raw switch
                {
                    byte[] b => b,
                    string text => Latin1Bytes(text, bad),
                    _ => throw bad($"array data is a {Describe(raw)}, not bytes"),
                };
                Fill(p, shapeObj, fortranObj is true or 1L, data, bad);
                return;
            }
            default:
                throw bad($"BUILD on a {Describe(target)}");
        }
    }

    internal static string Describe(object? v) => v switch
    {
        null => "None", long => "int", bool => "bool", string => "str", byte[] => "bytes", object?[] => "tuple",
        List<object?> => "list", PyDict => "dict", NdArrayU8 => "numpy array", Global g => $"global {g.Name}",
        DType => "numpy dtype", _ => v.GetType().Name,
    };

    /// <summary>At most 60 characters, control characters shown as '?', so that a message stays one line.</summary>
    static void Fill(NdArrayU8 p, object? shapeObj, bool fortran, byte[] data, Func<string, DataException> bad)
    {
        if (shapeObj is not object?[] dims || dims.Length > MaxDims) throw bad($"array shape is not a tuple of at most {MaxDims} integers");
        var shape = new long[dims.Length];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            shape[i] = dims[i] is long x && x >= 0 && x <= int.MaxValue ? x : throw bad($"array dimension {Describe(dims[i])}; allowed: 0 to {int.MaxValue}");
            count = shape[i] == 0 || count == 0 ? 0 : count > int.MaxValue / shape[i] ? throw bad("array shape overflows") : count * shape[i];
        }
        if (data.Length != count)
            throw bad($"array of shape ({string.Join(", ", shape)}) needs {count} bytes but its data has {data.Length}");
        (p.Shape, p.Fortran, p.Data, p.Built) = (shape, fortran, data, true);
    }

    static string Clip(string s)
    {
        var t = s.Length > 60 ? s[..60] + "..." : s;
        return t.Any(char.IsControl) ? new string(t.Select(c => char.IsControl(c) ? '?' : c).ToArray()) : t;
    }
}
