using System.Text;
using ResnetMnist.Core;

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
/// The CIFAR policy of the one <see cref="PickleMachine"/>, for the files CIFAR-10 and CIFAR-100 ship (<c>pickle.load(f,
/// encoding="latin1")</c> of dicts of numpy arrays, lists, ints and strings), written by Python 2 (protocol 2: py2
/// <c>str</c> as BINSTRING/SHORT_BINSTRING) or re-pickled by Python 3 (protocols 2 to 5). It builds real values
/// (dicts as <see cref="PyDict"/>, lists, tuples as <c>object?[]</c>, <c>long</c>, <c>bool</c>, <c>null</c>,
/// <c>string</c> for text and py2 str, <c>byte[]</c> for bytes, <see cref="NdArrayU8"/>), and accepts ONLY the
/// globals those files name (<see cref="AllowedGlobals"/>); any other global is refused when it is read, before
/// anything could be called. REDUCE works only on the allowed globals, BUILD only on arrays and dtypes with their
/// state tuples. Every problem is a one-line <see cref="DataException"/> naming the file.
/// </summary>
public sealed class RestrictedUnpickler : PicklePolicy
{
    /// <summary>
    /// Globals a CIFAR file may name: those of the published files (Python 2's cPickle, protocol 2:
    /// <c>numpy.core.multiarray._reconstruct</c>, <c>numpy.ndarray</c>, <c>numpy.dtype</c>) and of the same objects
    /// pickled by Python 3 with numpy, listed by pickletools for protocols 2 to 5 (numpy 1.24, Python 3.11):
    /// protocol 2 writes bytes as <c>_codecs.encode(text, 'latin1')</c> and empty bytes as <c>__builtin__.bytes()</c>
    /// (<c>builtins.bytes</c> without fix_imports); protocol 5 writes arrays as <c>numpy.core.numeric._frombuffer</c>;
    /// numpy 2 names its modules <c>numpy._core</c>.
    /// </summary>
    public static readonly IReadOnlySet<string> AllowedGlobals = new HashSet<string>
    {
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "_codecs.encode",
        "__builtin__.bytes", "builtins.bytes",
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
    };

    /// <summary>Largest pickle file read (a published CIFAR-10 batch is about 31 MB, CIFAR-100's <c>train</c> about 155 MB).</summary>
    public const long MaxFileBytes = 256L << 20;
    /// <summary>Most dimensions an array may have.</summary>
    public const int MaxDims = 32;

    /// <summary>
    /// Caps for a file of <paramref name="length"/> bytes. A published batch (10,000 images) holds about 50,000
    /// values (10,000 labels, 10,000 file names, their memo entries) and 31 MB of bytes; a CIFAR-100 train file
    /// (50,000 images, two label lists) about 200,000 values. Text and bytes can be at most twice the file (bytes
    /// written as latin1 text are decoded once more).
    /// </summary>
    public static PickleLimits LimitsFor(long length) => new("a CIFAR file", MaxOpcodes: 4 << 20, MaxValues: 1 << 20,
        MaxMemo: 1 << 20, MaxItems: 1 << 20, MaxBytes: 2 * length + 4096, MaxDepth: 32, MaxGlobals: 16, MaxNameLength: 64);

    readonly PickleLimits _limits;
    RestrictedUnpickler(long length) => _limits = LimitsFor(length);
    public override PickleLimits Limits => _limits;

    static readonly HashSet<byte> ForbiddenOps =
    [
        (byte)'F', (byte)'G', (byte)'S', (byte)'V', (byte)'i', (byte)'o', 0x81, 0x92, (byte)'P', (byte)'Q',
        0x82, 0x83, 0x84, 0x8f, 0x90, 0x91, 0x97, 0x98,
    ];

    /// <summary>Opcodes Python knows that these files never hold (floats, objects, persistent ids, extensions, sets, buffers).</summary>
    public override IReadOnlySet<byte> Forbidden => ForbiddenOps;

    sealed class DType { public bool Built; }

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
    public static object? Load(byte[] pickle, string name)
    {
        try { return PickleMachine.Run(pickle, new RestrictedUnpickler(pickle.Length)).Value; }
        catch (PickleException e)
        {
            throw new DataException(e.Fault switch
            {
                PickleFault.Truncated => $"{name}: truncated pickle ({e.What} at byte {e.Offset}, the file has {pickle.Length})",
                PickleFault.Malformed => $"{name}: malformed pickle ({e.Message})",
                PickleFault.Limit => $"{name}: {e.Message}",
                _ => $"{name}: {e.What}",
            }, e);
        }
    }

    public override object Global(string name) => AllowedGlobals.Contains(name) ? new PyGlobal(name)
        : throw Refuse($"refers to global '{Printable.Escape(name, 80)}'; a CIFAR file holds only numpy arrays, lists and dicts");

    public override object? Key(object? k) =>
        k is string or long or bool or null ? k : throw Malformed($"dict key of type {Describe(k)}");

    public override object? Finish(object? root) =>
        root is NdArrayU8 { Built: false } or DType or PyGlobal ? throw Malformed($"the pickle's value is an unfinished {Describe(root)}") : root;

    public override object? Reduce(object? function, object? args)
    {
        if (function is not PyGlobal { Name: var fn }) throw Malformed($"REDUCE on a {Describe(function)}");
        if (args is not object?[] a) throw Malformed($"REDUCE of {fn} with arguments that are not a tuple");
        switch (fn)
        {
            case "numpy.core.multiarray._reconstruct" or "numpy._core.multiarray._reconstruct":
                // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
                if (a.Length != 3 || a[0] is not PyGlobal { Name: "numpy.ndarray" })
                    throw Malformed($"{fn} with arguments other than (numpy.ndarray, shape, typecode)");
                return new NdArrayU8();
            case "numpy.dtype":
                // dtype('u1', align, copy); align/copy are bools (py3) or ints (py2).
                if (a.Length != 3 || a[0] is not string code || a[1] is not (bool or long) || a[2] is not (bool or long))
                    throw Malformed("numpy.dtype with arguments other than (code, align, copy)");
                if (code != "u1") throw Malformed($"array dtype '{Printable.Escape(code, 40)}'; allowed: uint8 ('u1')");
                return new DType();
            case "numpy.core.numeric._frombuffer" or "numpy._core.numeric._frombuffer":
            {
                if (a.Length != 4 || a[0] is not byte[] buffer || a[1] is not DType { Built: true } || a[3] is not ("C" or "F"))
                    throw Malformed($"{fn} with arguments other than (bytearray, uint8 dtype, shape, 'C' or 'F')");
                var array = new NdArrayU8();
                Fill(array, a[2], a[3] is "F", buffer);
                return array;
            }
            case "_codecs.encode":
                // Python 3 pickles bytes under protocol 2 as _codecs.encode(text, 'latin1').
                if (a.Length != 2 || a[0] is not string text || a[1] is not ("latin1" or "latin-1"))
                    throw Malformed("_codecs.encode with arguments other than (text, 'latin1')");
                return Latin1Bytes(text);
            case "__builtin__.bytes" or "builtins.bytes":
                // ... and empty bytes as bytes().
                if (a.Length != 0) throw Malformed($"{fn} with arguments; allowed: bytes() (empty bytes)");
                return Array.Empty<byte>();
            default:
                throw Malformed($"REDUCE of {fn}");
        }
    }

    static byte[] Latin1Bytes(string text)
    {
        if (text.AsSpan().IndexOfAnyExceptInRange('\0', '\u00ff') >= 0) throw Malformed("bytes encoded as latin1 text hold a character above U+00FF");
        return Encoding.Latin1.GetBytes(text);
    }

    public override void Build(object? target, object? state)
    {
        switch (target)
        {
            case DType d:
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]) of a plain dtype.
                if (d.Built) throw Malformed("BUILD on a dtype twice");
                if (state is not object?[] { Length: 8 or 9 } s || s[0] is not (3L or 4L) || s[1] is not ("|" or "<" or ">" or "=")
                    || s[2] is not null || s[3] is not null || s[4] is not null)
                    throw Malformed("dtype state other than a plain dtype's (version, byteorder, None, None, None, ...)");
                d.Built = true;
                return;
            case NdArrayU8 p:
            {
                // (version, shape, dtype, is_fortran, rawdata) or, from older numpy, without the version.
                if (p.Built) throw Malformed("BUILD on an array twice");
                if (state is not object?[] st || (st.Length != 5 && st.Length != 4)) throw Malformed("array state is not (version, shape, dtype, is_fortran, data)");
                if (st.Length == 5 && st[0] is not 1L) throw Malformed($"array state version {Describe(st[0])}; allowed: 1");
                var (shapeObj, dtypeObj, fortranObj, raw) = st.Length == 5 ? (st[1], st[2], st[3], st[4]) : (st[0], st[1], st[2], st[3]);
                if (dtypeObj is not DType { Built: true }) throw Malformed("array dtype is not a numpy.dtype");
                if (fortranObj is not (bool or long)) throw Malformed("array is_fortran is not a bool");
                byte[] data = raw switch
                {
                    byte[] b => b,
                    string text => Latin1Bytes(text),
                    _ => throw Malformed($"array data is a {Describe(raw)}, not bytes"),
                };
                Fill(p, shapeObj, fortranObj is true or 1L, data);
                return;
            }
            default:
                throw Malformed($"BUILD on a {Describe(target)}");
        }
    }

    /// <summary>Python's type name of a value, with numpy's.</summary>
    internal static new string Describe(object? v) => v switch
    {
        NdArrayU8 => "numpy array", DType => "numpy dtype", _ => PicklePolicy.Describe(v),
    };

    static void Fill(NdArrayU8 p, object? shapeObj, bool fortran, byte[] data)
    {
        if (shapeObj is not object?[] dims || dims.Length > MaxDims) throw Malformed($"array shape is not a tuple of at most {MaxDims} integers");
        var shape = new long[dims.Length];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            shape[i] = dims[i] is long x && x >= 0 && x <= int.MaxValue ? x : throw Malformed($"array dimension {Describe(dims[i])}; allowed: 0 to {int.MaxValue}");
            count = shape[i] == 0 || count == 0 ? 0 : count > int.MaxValue / shape[i] ? throw Malformed("array shape overflows") : count * shape[i];
        }
        if (data.Length != count)
            throw Malformed($"array of shape ({string.Join(", ", shape)}) needs {count} bytes but its data has {data.Length}");
        (p.Shape, p.Fortran, p.Data, p.Built) = (shape, fortran, data, true);
    }
}
