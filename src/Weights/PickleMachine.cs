using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ResnetMnist.Weights;

/// <summary>A storage a pickle refers to through a persistent id: <c>('storage', torch.FloatStorage, key, location, numel)</c>.</summary>
/// <param name="Key">Record name under <c>&lt;archive&gt;/data/</c>.</param>
/// <param name="StorageType">The storage class without module (<c>FloatStorage</c>).</param>
/// <param name="Numel">Elements of the storage.</param>
/// <param name="ElementSize">Bytes per element.</param>
public sealed record StorageRef(string Key, string StorageType, long Numel, int ElementSize)
{
    /// <summary>Bytes the record must hold.</summary>
    public long Bytes => Numel * ElementSize;
}

/// <summary>A tensor rebuilt by <c>torch._utils._rebuild_tensor(_v2)</c> over a storage.</summary>
public sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

/// <summary>What a pickle would build, found without executing anything.</summary>
/// <param name="Globals">Every global (<c>module.name</c>) it names, in order of appearance, without duplicates.</param>
/// <param name="Storages">Storages referenced (one per key).</param>
/// <param name="Tensors">Tensors rebuilt over them.</param>
/// <param name="Metadata">
/// The root's <c>_metadata</c> (what <c>torch.save(state_dict)</c> pickles as the OrderedDict's BUILD state): each
/// entry whose value is a dict of plain values (str, int, float, bool), by key. Empty when there is none.
/// </param>
public sealed record PickleSummary(IReadOnlyList<string> Globals, IReadOnlyList<StorageRef> Storages, IReadOnlyList<TensorRef> Tensors,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, object>>? Metadata = null);

/// <summary>
/// A pickle virtual machine that builds inert values only: it follows the stack, memo and marks exactly as Python's
/// unpickler does (so globals built with <c>STACK_GLOBAL</c> from memoised strings are named correctly), records the
/// globals, the storages of persistent ids and the arguments of tensor rebuilds, and never imports or calls anything.
/// Every malformed stream (unknown opcode, truncation, stack underflow, a missing mark, an undefined or malformed memo
/// key, absurd tensor geometry) is an <see cref="InvalidDataException"/> with the byte offset.
/// </summary>
public static class PickleMachine
{
    /// <summary>Most dimensions a tensor may have (PyTorch's own limit is 64; resnet18 uses at most 4).</summary>
    public const int MaxDims = 64;

    /// <summary>Bytes per element of the storage classes <c>torch.save</c> writes.</summary>
    public static readonly IReadOnlyDictionary<string, int> StorageElementSizes = new Dictionary<string, int>
    {
        ["DoubleStorage"] = 8, ["FloatStorage"] = 4, ["HalfStorage"] = 2, ["BFloat16Storage"] = 2, ["LongStorage"] = 8,
        ["IntStorage"] = 4, ["ShortStorage"] = 2, ["CharStorage"] = 1, ["ByteStorage"] = 1, ["BoolStorage"] = 1,
        ["ComplexFloatStorage"] = 8, ["ComplexDoubleStorage"] = 16,
    };

    sealed class Mark { public static readonly Mark Instance = new(); }
    sealed record Global(string Name);
    sealed record Call(string? Function, object? Args);
    sealed record Bytes(long Length);
    /// <summary>A dict, or an OrderedDict built with no arguments; <see cref="State"/> is the state a BUILD gave it.</summary>
    sealed class PDict { public readonly List<(object? Key, object? Value)> Items = []; public object? State; }
    sealed class PSet { public readonly List<object?> Items = []; }

    /// <summary>Runs <paramref name="pickle"/> to its STOP opcode.</summary>
    public static PickleSummary Analyze(ReadOnlySpan<byte> pickle)
    {
        var globals = new List<string>();
        var storages = new Dictionary<string, StorageRef>();
        var tensors = new List<TensorRef>();
        var stack = new List<object?>();
        var marks = new Stack<int>();
        var memo = new Dictionary<long, object?>();
        int pos = 0, at = 0;

        InvalidDataException Bad(string what) => new($"{what} at byte {at}");
        ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, ref int i, long n)
        {
            if (n < 0 || n > p.Length - i) throw new InvalidDataException($"pickle truncated at byte {i} (needs {n} more bytes)");
            var s = p.Slice(i, (int)n);
            i += (int)n;
            return s;
        }
        string Line(ReadOnlySpan<byte> p, ref int i)
        {
            int nl = p[i..].IndexOf((byte)'\n');
            if (nl < 0) throw new InvalidDataException($"pickle truncated at byte {i} (unterminated line)");
            var s = Encoding.UTF8.GetString(p.Slice(i, nl));
            i += nl + 1;
            return s;
        }
        long U(ReadOnlySpan<byte> b) { long v = 0; for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k]; return v; }
        long Len8(ReadOnlySpan<byte> b)
        {
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(b);
            return v > int.MaxValue ? throw Bad($"length {v} larger than the pickle") : (long)v;
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
        long MemoKey(string text) =>
            long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Bad($"malformed memo key '{Clip(text)}'");
        object? Get(long key) => memo.TryGetValue(key, out var v) ? v : throw Bad($"memo key {key} is not defined");
        void AddGlobal(string name) { if (!globals.Contains(name)) globals.Add(name); }
        void Push(object? v) => stack.Add(v);

        while (true)
        {
            at = pos;
            if (pos >= pickle.Length) throw new InvalidDataException($"pickle truncated at byte {pos} (no STOP opcode)");
            byte op = pickle[pos++];
            switch (op)
            {
                case (byte)'.':                                                    // STOP
                    if (stack.Count != 1 || marks.Count != 0) throw Bad("STOP with a malformed stack");
                    return new PickleSummary(globals, storages.Values.ToList(), tensors, RootMetadata(stack[0]));
                case (byte)'(': marks.Push(stack.Count); break;                    // MARK
                case (byte)'0': Pop(); break;                                      // POP
                case (byte)'1': PopMark(); break;                                  // POP_MARK
                case (byte)'2': Push(Top()); break;                                // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'F':
                {
                    var s = Line(pickle, ref pos);
                    Push(double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Bad($"malformed FLOAT '{Clip(s)}'"));
                    break;
                }
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
                    var s = Line(pickle, ref pos).TrimEnd('L');
                    Push(long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : new Bytes(s.Length));
                    break;
                }
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4))); break;
                case (byte)'K': Push(U(Take(pickle, ref pos, 1))); break;
                case (byte)'M': Push(U(Take(pickle, ref pos, 2))); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(pickle, ref pos, 8))); break;
                case 0x8a: case 0x8b:                                              // LONG1, LONG4
                {
                    long n = op == 0x8a ? U(Take(pickle, ref pos, 1)) : BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4));
                    var b = Take(pickle, ref pos, n);
                    if (n <= 8)
                    {
                        long v = 0;
                        for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k];
                        if (n > 0 && n < 8 && (b[^1] & 0x80) != 0) v -= 1L << (8 * (int)n);   // two's complement
                        Push(v);
                    }
                    else Push(new Bytes(n));
                    break;
                }
                case (byte)'S': Push(Line(pickle, ref pos).Trim('\'', '"')); break;
                case (byte)'V': Push(Line(pickle, ref pos)); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(pickle, ref pos, BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4))))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))))); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 4))))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(Take(pickle, ref pos, Len8(Take(pickle, ref pos, 8))))); break;
                case (byte)'B': Push(new Bytes(Take(pickle, ref pos, U(Take(pickle, ref pos, 4))).Length)); break;
                case (byte)'C': Push(new Bytes(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))).Length)); break;
                case 0x8e: case 0x96: Push(new Bytes(Take(pickle, ref pos, Len8(Take(pickle, ref pos, 8))).Length)); break;
                case 0x80: Take(pickle, ref pos, 1); break;                        // PROTO
                case 0x95: Take(pickle, ref pos, 8); break;                        // FRAME
                case 0x97: throw Bad("out-of-band buffer (NEXT_BUFFER) is not allowed");
                case 0x98: break;                                                  // READONLY_BUFFER
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'}': Push(new PDict()); break;
                case 0x8f: Push(new PSet()); break;
                case (byte)'t': Push(PopMark().ToArray()); break;
                case 0x85: { var a = Pop(); Push(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'l': Push(PopMark()); break;
                case 0x91: { var s = new PSet(); s.Items.AddRange(PopMark()); Push(s); break; }
                case (byte)'d':
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Bad("DICT with an odd number of items");
                    var d = new PDict();
                    for (int k = 0; k < items.Count; k += 2) d.Items.Add((items[k], items[k + 1]));
                    Push(d);
                    break;
                }
                case (byte)'a': { var v = Pop(); Target<List<object?>>(Top(), "APPEND", Bad)?.Add(v); break; }
                case (byte)'e': { var items = PopMark(); Target<List<object?>>(Top(), "APPENDS", Bad)?.AddRange(items); break; }
                case 0x90: { var items = PopMark(); (Top() as PSet ?? throw Bad("ADDITEMS to a non-set")).Items.AddRange(items); break; }
                case (byte)'s':
                {
                    var v = Pop(); var k = Pop();
                    Target<PDict>(Top(), "SETITEM", Bad)?.Items.Add((k, v));
                    break;
                }
                case (byte)'u':
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Bad("SETITEMS with an odd number of items");
                    var d = Target<PDict>(Top(), "SETITEMS", Bad);
                    for (int k = 0; k < items.Count && d is not null; k += 2) d.Items.Add((items[k], items[k + 1]));
                    break;
                }
                case (byte)'b':                                                    // BUILD: a dict's state is kept (for _metadata)
                {
                    var state = Pop();
                    if (Top() is PDict d) d.State = state;
                    break;
                }
                case (byte)'c':                                                    // GLOBAL
                {
                    var module = Line(pickle, ref pos);
                    var name = Line(pickle, ref pos);
                    AddGlobal($"{module}.{name}");
                    Push(new Global($"{module}.{name}"));
                    break;
                }
                case 0x93:                                                         // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    var g = module is string m && name is string n ? $"{m}.{n}" : "<STACK_GLOBAL with a computed name>";
                    AddGlobal(g);
                    Push(new Global(g));
                    break;
                }
                case 0x82: case 0x83: case 0x84:                                   // EXT1, EXT2, EXT4
                    Take(pickle, ref pos, op == 0x82 ? 1 : op == 0x83 ? 2 : 4);
                    AddGlobal("<copyreg extension>");
                    Push(new Global("<copyreg extension>"));
                    break;
                case (byte)'i':                                                    // INST
                {
                    var module = Line(pickle, ref pos);
                    var name = Line(pickle, ref pos);
                    AddGlobal($"{module}.{name}");
                    Push(new Call($"{module}.{name}", PopMark().ToArray()));
                    break;
                }
                case (byte)'o':                                                    // OBJ
                {
                    var items = PopMark();
                    if (items.Count == 0) throw Bad("OBJ without a class");
                    Push(new Call((items[0] as Global)?.Name, items.Skip(1).ToArray()));
                    break;
                }
                case 0x81: { var args = Pop(); var cls = Pop(); Push(new Call((cls as Global)?.Name, args)); break; }          // NEWOBJ
                case 0x92: { Pop(); var args = Pop(); var cls = Pop(); Push(new Call((cls as Global)?.Name, args)); break; }  // NEWOBJ_EX
                case (byte)'R':                                                    // REDUCE
                {
                    var args = Pop();
                    var fn = Pop() as Global;
                    if (fn?.Name is "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor")
                        tensors.Add(Tensor(args, Bad));
                    // OrderedDict(): a dict whose items (and BUILD state) are kept, like a plain one.
                    if (fn?.Name == "collections.OrderedDict" && args is object?[] { Length: 0 }) Push(new PDict());
                    else Push(new Call(fn?.Name, args));
                    break;
                }
                case (byte)'P': Push(Persistent(Line(pickle, ref pos), storages, Bad)); break;
                case (byte)'Q': Push(Persistent(Pop(), storages, Bad)); break;
                case (byte)'p': memo[MemoKey(Line(pickle, ref pos))] = Top(); break;
                case (byte)'q': memo[U(Take(pickle, ref pos, 1))] = Top(); break;
                case (byte)'r': memo[(uint)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4))] = Top(); break;
                case 0x94: memo[memo.Count] = Top(); break;                        // MEMOIZE
                case (byte)'g': Push(Get(MemoKey(Line(pickle, ref pos)))); break;
                case (byte)'h': Push(Get(U(Take(pickle, ref pos, 1)))); break;
                case (byte)'j': Push(Get((uint)BinaryPrimitives.ReadInt32LittleEndian(Take(pickle, ref pos, 4)))); break;
                default:
                    throw Bad($"unknown pickle opcode 0x{op:x2}");
            }
        }
    }

    /// <summary>The container an APPEND/SETITEM adds to; an object built by a call (an OrderedDict) takes the items too, but they are not kept.</summary>
    static T? Target<T>(object? top, string op, Func<string, InvalidDataException> bad) where T : class =>
        top as T ?? (top is Call ? null : throw bad($"{op} on a {Describe(top)}"));

    static string Describe(object? v) => v switch
    {
        null => "None", long => "int", double => "float", string => "str", bool => "bool", object?[] => "tuple",
        Global g => $"class {g.Name}", StorageRef => "storage", _ => v.GetType().Name.ToLowerInvariant(),
    };

    /// <summary>The root dict's <c>_metadata</c> entries that are dicts of plain values (later keys win, as in Python).</summary>
    static IReadOnlyDictionary<string, IReadOnlyDictionary<string, object>> RootMetadata(object? root)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, object>>(StringComparer.Ordinal);
        if (root is not PDict { State: PDict state }) return result;
        var metadata = state.Items.LastOrDefault(kv => kv.Key is "_metadata").Value as PDict;
        if (metadata is null) return result;
        foreach (var (key, value) in metadata.Items)
        {
            if (key is not string name || value is not PDict entry) continue;
            var fields = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var (k, v) in entry.Items)
                if (k is string field && v is string or long or double or bool) fields[field] = v!;
            result[name] = fields;
        }
        return result;
    }

    static string Clip(string s) => s.Length > 40 ? s[..40] + "..." : s;

    static StorageRef Persistent(object? pid, Dictionary<string, StorageRef> storages, Func<string, InvalidDataException> bad)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw bad("persistent id that is not a tensor storage");
        var type = (t[1] as Global)?.Name ?? throw bad("storage type is not a class");
        var shortType = type.StartsWith("torch.", StringComparison.Ordinal) ? type["torch.".Length..] : type;
        if (!StorageElementSizes.TryGetValue(shortType, out int size))
            throw bad($"unknown storage type {type}; allowed: torch.{string.Join(", torch.", StorageElementSizes.Keys)}");
        if (t[2] is not string key || key.Length == 0 || key.Length > 64 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            throw bad("storage key is not a plain record name");
        if (t[4] is not long numel || numel < 0 || numel > int.MaxValue)
            throw bad($"storage '{key}' has an invalid element count ({t[4] ?? "None"}; allowed: 0 to {int.MaxValue})");
        var s = new StorageRef(key, shortType, numel, size);
        if (storages.TryGetValue(key, out var seen))
        {
            if (seen != s) throw bad($"storage '{key}' is declared twice with different types or sizes");
            return seen;
        }
        storages[key] = s;
        return s;
    }

    static TensorRef Tensor(object? args, Func<string, InvalidDataException> bad)
    {
        if (args is not object?[] { Length: >= 4 } a) throw bad("tensor rebuild with too few arguments");
        if (a[0] is not StorageRef storage) throw bad("tensor rebuild whose first argument is not a storage");
        if (a[1] is not long offset || offset < 0) throw bad("tensor storage offset is not an integer >= 0");
        var size = Longs(a[2], "size", bad);
        var stride = Longs(a[3], "stride", bad);
        if (size.Length != stride.Length) throw bad($"tensor size has {size.Length} dimensions but its stride {stride.Length}");
        // The elements it covers must lie inside its storage: offset + sum((size_i - 1) * stride_i) < numel.
        long numel = 1, last = offset;
        try
        {
            checked
            {
                foreach (var s in size) numel *= s;
                if (numel > 0)
                    for (int i = 0; i < size.Length; i++) last += (size[i] - 1) * stride[i];
            }
        }
        catch (OverflowException) { throw bad($"tensor shape [{string.Join(", ", size)}] with stride [{string.Join(", ", stride)}] overflows"); }
        if (numel > storage.Numel)
            throw bad($"tensor of shape [{string.Join(", ", size)}] ({numel} elements) is larger than its storage '{storage.Key}' ({storage.Numel} elements)");
        if (numel > 0 && last >= storage.Numel)
            throw bad($"tensor of shape [{string.Join(", ", size)}], stride [{string.Join(", ", stride)}], offset {offset} reads past its storage '{storage.Key}' ({storage.Numel} elements)");
        return new TensorRef(storage, offset, size, stride);
    }

    static long[] Longs(object? v, string what, Func<string, InvalidDataException> bad)
    {
        if (v is not object?[] t) throw bad($"tensor {what} is not a tuple");
        if (t.Length > MaxDims) throw bad($"tensor {what} has {t.Length} dimensions; allowed: at most {MaxDims}");
        var r = new long[t.Length];
        for (int i = 0; i < t.Length; i++)
            r[i] = t[i] is long x && x >= 0 ? x : throw bad($"tensor {what} holds {t[i] ?? "None"}; allowed: integers >= 0");
        return r;
    }
}
