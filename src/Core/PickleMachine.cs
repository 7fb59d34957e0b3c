using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ResnetMnist.Core;

/// <summary>What went wrong in a pickle: its stream (malformed, truncated), its content (refused by the policy), or its size (a limit).</summary>
public enum PickleFault { Malformed, Truncated, Refused, Limit }

/// <summary>A pickle the machine will not run; <see cref="What"/> is one line (names in it are escaped and capped).</summary>
public sealed class PickleException(PickleFault fault, string what, long offset)
    : Exception(fault == PickleFault.Truncated ? $"pickle truncated at byte {offset} ({what})" : $"{what} at byte {offset}")
{
    public PickleFault Fault { get; } = fault;
    /// <summary>The problem, without the byte offset.</summary>
    public string What { get; } = what;
    /// <summary>Offset of the opcode that failed.</summary>
    public long Offset { get; } = offset;
}

/// <summary>
/// Caps on what one pickle may make the machine do. Every cap is checked as the stream runs, so a refused pickle
/// costs at most the cap's worth of memory and time. Opcodes are at least one byte, so a file can never execute
/// more opcodes than it has bytes; the caps below are absolute ceilings for the use.
/// </summary>
/// <param name="Use">What the pickle should be, for messages ("a state_dict", "a CIFAR-10 batch file").</param>
/// <param name="MaxOpcodes">Opcodes executed.</param>
/// <param name="MaxValues">Values created (each container, string, number, global, call result counts once; DUP and memo reads do not).</param>
/// <param name="MaxMemo">Distinct memo keys.</param>
/// <param name="MaxItems">Elements of one list, dict (pairs), tuple or set.</param>
/// <param name="MaxBytes">Total characters of text and bytes of bytes objects built.</param>
/// <param name="MaxDepth">Nesting: open MARKs, and containers inside containers (as they are inserted).</param>
/// <param name="MaxGlobals">Distinct globals named.</param>
/// <param name="MaxNameLength">Characters of a global's module or name.</param>
public sealed record PickleLimits(string Use, long MaxOpcodes, long MaxValues, int MaxMemo, int MaxItems, long MaxBytes,
    int MaxDepth, int MaxGlobals, int MaxNameLength);

/// <summary>A pickled dict, items in insertion order (a repeated key keeps its last value, as in Python); <see cref="State"/> is what a BUILD gave it.</summary>
public sealed class PyDict
{
    public List<(object? Key, object? Value)> Items { get; } = [];
    /// <summary>The BUILD state (an OrderedDict's <c>__dict__</c>: torch.save puts <c>_metadata</c> there), or null.</summary>
    public object? State { get; set; }

    public bool TryGet(string key, out object? value)
    {
        for (int i = Items.Count - 1; i >= 0; i--)
            if (Items[i].Key is string k && k == key) { value = Items[i].Value; return true; }
        value = null;
        return false;
    }
}

/// <summary>A pickled set or frozenset.</summary>
public sealed class PySet { public List<object?> Items { get; } = []; }

/// <summary>A global the pickle named (<c>module.name</c>); nothing is imported.</summary>
public sealed record PyGlobal(string Name);

/// <summary>An integer wider than 64 bits (LONG / LONG1 / LONG4): kept as its byte count only.</summary>
public sealed record PyBigInt(long Bytes);

/// <summary>
/// What a use allows: which globals, what REDUCE/NEWOBJ/BUILD/persistent ids make. Methods throw
/// <see cref="Refuse"/> (or return a value); they never import, execute or allocate beyond what they are given.
/// </summary>
public abstract class PicklePolicy
{
    public abstract PickleLimits Limits { get; }

    /// <summary>Opcodes this use never holds (refused by name when met).</summary>
    public virtual IReadOnlySet<byte> Forbidden => EmptyOps;
    static readonly HashSet<byte> EmptyOps = [];

    /// <summary>The value a global (first time named) stands for. <paramref name="name"/> is <c>module.name</c>, at most <see cref="PickleLimits.MaxNameLength"/> per part.</summary>
    public virtual object Global(string name) => new PyGlobal(name);
    /// <summary>REDUCE (<paramref name="function"/>(*<paramref name="args"/>)) and INST/OBJ.</summary>
    public abstract object? Reduce(object? function, object? args);
    /// <summary>NEWOBJ / NEWOBJ_EX (<c>cls.__new__(cls, *args)</c>).</summary>
    public virtual object? NewObject(object? cls, object? args) => throw Refuse($"creating objects (NEWOBJ) is not allowed in {Limits.Use}");
    /// <summary>BUILD: <paramref name="target"/>.__setstate__(<paramref name="state"/>).</summary>
    public abstract void Build(object? target, object? state);
    /// <summary>PERSID / BINPERSID.</summary>
    public virtual object? Persistent(object? pid) => throw Refuse($"persistent ids are not allowed in {Limits.Use}");
    /// <summary>A bytes object (BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8); default: a copy.</summary>
    public virtual object Bytes(ReadOnlySpan<byte> bytes) => bytes.ToArray();
    /// <summary>True when APPEND/SETITEM may target <paramref name="target"/> although it is no list/dict (its items are then dropped).</summary>
    public virtual bool TakesItems(object? target) => false;
    /// <summary>A dict key, checked.</summary>
    public virtual object? Key(object? key) => key;
    /// <summary>The value at STOP.</summary>
    public virtual object? Finish(object? root) => root;

    /// <summary>An exception refusing the content (the machine adds the byte offset).</summary>
    protected static PolicyRefusal Refuse(string what) => new(PickleFault.Refused, what);
    /// <summary>An exception for a malformed stream.</summary>
    protected static PolicyRefusal Malformed(string what) => new(PickleFault.Malformed, what);

    /// <summary>Thrown by a policy; turned into a <see cref="PickleException"/> at the current opcode.</summary>
    public sealed class PolicyRefusal(PickleFault fault, string what) : Exception(what) { public PickleFault Fault { get; } = fault; }

    /// <summary>Python's type name of a value, for messages.</summary>
    public static string Describe(object? v) => v switch
    {
        null => "None", bool => "bool", long => "int", PyBigInt => "int wider than 64 bits", double => "float", string => "str",
        byte[] => "bytes", object?[] => "tuple", List<object?> => "list", PyDict => "dict", PySet => "set",
        PyGlobal g => $"global {Printable.Escape(g.Name, 80)}", _ => v.GetType().Name,
    };
}

/// <summary>
/// The one pickle virtual machine: it follows the stack, memo and marks exactly as Python's unpickler does (so
/// globals built with STACK_GLOBAL from memoised strings are named correctly), builds plain values (None, bool,
/// int, float, str, bytes, tuple as <c>object?[]</c>, list as <c>List&lt;object?&gt;</c>, <see cref="PyDict"/>,
/// <see cref="PySet"/>), and hands globals, calls, BUILD and persistent ids to a <see cref="PicklePolicy"/>; it never
/// imports or calls anything. Every cap of <see cref="PickleLimits"/> is checked as it runs; globals are counted in a
/// hash set (linear time). Every problem is one <see cref="PickleException"/> with the byte offset.
/// </summary>
public sealed class PickleMachine
{
    readonly byte[] _pickle;
    readonly PicklePolicy _policy;
    readonly PickleLimits _limits;
    readonly List<object?> _stack = [];
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = [];
    readonly Dictionary<object, int> _depth = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> _globalSet = new(StringComparer.Ordinal);
    readonly List<string> _globals = [];
    int _pos, _at;
    long _ops, _values, _bytes;

    PickleMachine(byte[] pickle, PicklePolicy policy) => (_pickle, _policy, _limits) = (pickle, policy, policy.Limits);

    /// <summary>Every global the pickle named, in order of first appearance.</summary>
    public IReadOnlyList<string> Globals => _globals;

    /// <summary>Runs <paramref name="pickle"/> to its STOP opcode under <paramref name="policy"/>; returns the machine (its <see cref="Globals"/>) and the value.</summary>
    /// <exception cref="PickleException">The stream is malformed, truncated, refused by the policy, or over a limit.</exception>
    public static (object? Value, PickleMachine Machine) Run(byte[] pickle, PicklePolicy policy)
    {
        var m = new PickleMachine(pickle, policy);
        try { return (m.Execute(), m); }
        catch (PicklePolicy.PolicyRefusal r) { throw new PickleException(r.Fault, r.Message, m._at); }
    }

    /// <summary>Opcode names (pickletools), for messages.</summary>
    public static readonly IReadOnlyDictionary<byte, string> OpcodeNames = new Dictionary<byte, string>
    {
        [(byte)'('] = "MARK", [(byte)'.'] = "STOP", [(byte)'0'] = "POP", [(byte)'1'] = "POP_MARK", [(byte)'2'] = "DUP",
        [(byte)'F'] = "FLOAT", [(byte)'I'] = "INT", [(byte)'J'] = "BININT", [(byte)'K'] = "BININT1", [(byte)'L'] = "LONG",
        [(byte)'M'] = "BININT2", [(byte)'N'] = "NONE", [(byte)'P'] = "PERSID", [(byte)'Q'] = "BINPERSID", [(byte)'R'] = "REDUCE",
        [(byte)'S'] = "STRING", [(byte)'T'] = "BINSTRING", [(byte)'U'] = "SHORT_BINSTRING", [(byte)'V'] = "UNICODE",
        [(byte)'X'] = "BINUNICODE", [(byte)'a'] = "APPEND", [(byte)'b'] = "BUILD", [(byte)'c'] = "GLOBAL", [(byte)'d'] = "DICT",
        [(byte)'}'] = "EMPTY_DICT", [(byte)'e'] = "APPENDS", [(byte)'g'] = "GET", [(byte)'h'] = "BINGET", [(byte)'i'] = "INST",
        [(byte)'j'] = "LONG_BINGET", [(byte)'l'] = "LIST", [(byte)']'] = "EMPTY_LIST", [(byte)'o'] = "OBJ", [(byte)'p'] = "PUT",
        [(byte)'q'] = "BINPUT", [(byte)'r'] = "LONG_BINPUT", [(byte)'s'] = "SETITEM", [(byte)'t'] = "TUPLE", [(byte)')'] = "EMPTY_TUPLE",
        [(byte)'u'] = "SETITEMS", [(byte)'G'] = "BINFLOAT", [0x80] = "PROTO", [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2",
        [0x84] = "EXT4", [0x85] = "TUPLE1", [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE",
        [0x8a] = "LONG1", [0x8b] = "LONG4", [(byte)'B'] = "BINBYTES", [(byte)'C'] = "SHORT_BINBYTES", [0x8c] = "SHORT_BINUNICODE",
        [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET",
        [0x92] = "NEWOBJ_EX", [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
        [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
    };

    PickleException Bad(string what) => new(PickleFault.Malformed, what, _at);
    PickleException Over(string what, long cap) => new(PickleFault.Limit, $"{what} (allowed: at most {cap} in {_limits.Use})", _at);

    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _pickle.Length - _pos)
            throw new PickleException(PickleFault.Truncated, $"needs {n} more bytes, the pickle has {_pickle.Length}", _pos);
        var s = _pickle.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    /// <summary>A text line of at most <paramref name="max"/> bytes (the search for its end stops there: linear time).</summary>
    ReadOnlySpan<byte> LineBytes(long max, string what)
    {
        var rest = _pickle.AsSpan(_pos);
        int nl = rest[..(int)Math.Min(rest.Length, max + 1)].IndexOf((byte)'\n');
        if (nl < 0)
        {
            if (rest.Length > max) throw Over($"{what} too long ('{Printable.Escape(Encoding.Latin1.GetString(rest[..60]), 60)}…')", max);
            throw new PickleException(PickleFault.Truncated, "unterminated line", _pos);
        }
        var s = rest[..nl];
        _pos += nl + 1;
        return s;
    }

    string Line(long max = 4096, string what = "a text line") => Encoding.Latin1.GetString(LineBytes(max, what));

    string Text(ReadOnlySpan<byte> utf8)
    {
        CountBytes(utf8.Length);
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(utf8); }
        catch (DecoderFallbackException) { throw Bad("text that is not UTF-8"); }
    }

    string Latin1(ReadOnlySpan<byte> b) { CountBytes(b.Length); return Encoding.Latin1.GetString(b); }

    void CountBytes(long n)
    {
        _bytes += n;
        if (_bytes > _limits.MaxBytes) throw Over("too many characters of text and bytes objects", _limits.MaxBytes);
    }

    long U(ReadOnlySpan<byte> b) { long v = 0; for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k]; return v; }

    long Len8()
    {
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return v > int.MaxValue ? throw new PickleException(PickleFault.Truncated, $"length {v} larger than the pickle", _at) : (long)v;
    }

    void Push(object? v)
    {
        if (++_values > _limits.MaxValues) throw Over("too many values", _limits.MaxValues);
        _stack.Add(v);
    }

    object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw Bad("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    object? Top() => _stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek()) ? throw Bad("stack underflow") : _stack[^1];

    List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("no MARK before this opcode");
        int m = _marks.Pop();
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    static bool IsContainer(object? v) => v is object?[] or List<object?> or PyDict or PySet;
    int Depth(object? v) => !IsContainer(v) ? 0 : _depth.TryGetValue(v!, out var d) ? d : 1;

    /// <summary>Checks that <paramref name="container"/> may hold <paramref name="count"/> items, one of them <paramref name="item"/>.</summary>
    void Holds(object container, int count, object? item)
    {
        if (count > _limits.MaxItems) throw Over($"a {PicklePolicy.Describe(container)} with too many elements", _limits.MaxItems);
        int d = Depth(item) + 1;
        if (d > Depth(container))
        {
            if (d > _limits.MaxDepth) throw Over("containers nested too deep", _limits.MaxDepth);
            _depth[container] = d;
        }
    }

    object?[] Tuple(List<object?> items)
    {
        var t = items.ToArray();
        foreach (var item in t) Holds(t, t.Length, item);
        if (t.Length == 0) Holds(t, 0, null);
        return t;
    }

    object?[] Tuple(params object?[] items) => Tuple(items.ToList());

    void Append(object? target, IEnumerable<object?> items, string op)
    {
        if (target is List<object?> list)
        {
            foreach (var v in items) { Holds(list, list.Count + 1, v); list.Add(v); }
            return;
        }
        if (_policy.TakesItems(target)) return;
        throw Bad($"{op} on a {PicklePolicy.Describe(target)}");
    }

    void SetItems(object? target, List<object?> items, string op)
    {
        if (items.Count % 2 != 0) throw Bad($"{op} with an odd number of items");
        if (target is PyDict d)
        {
            for (int k = 0; k < items.Count; k += 2)
            {
                Holds(d, d.Items.Count + 1, items[k]);
                Holds(d, d.Items.Count + 1, items[k + 1]);
                d.Items.Add((_policy.Key(items[k]), items[k + 1]));
            }
            return;
        }
        if (_policy.TakesItems(target)) return;
        throw Bad($"{op} on a {PicklePolicy.Describe(target)}");
    }

    void Memo(long key)
    {
        if (!_memo.ContainsKey(key) && _memo.Count >= _limits.MaxMemo) throw Over("too many memo entries", _limits.MaxMemo);
        _memo[key] = Top();
    }

    long MemoKey(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Bad($"malformed memo key '{Printable.Escape(text, 40)}'");

    object? Get(long key) => _memo.TryGetValue(key, out var v) ? v : throw Bad($"memo key {key} is not defined");

    object Global(string module, string name)
    {
        int max = _limits.MaxNameLength;
        if (module.Length > max || name.Length > max)
            throw Over($"a global whose module or name has too many characters ('{Printable.Escape(module, 60)}.{Printable.Escape(name, 60)}')", max);
        var full = $"{module}.{name}";
        if (_globalSet.Add(full))
        {
            if (_globalSet.Count > _limits.MaxGlobals) throw Over("too many distinct globals", _limits.MaxGlobals);
            _globals.Add(full);
        }
        return _policy.Global(full);
    }

    object? Execute()
    {
        while (true)
        {
            _at = _pos;
            if (_pos >= _pickle.Length) throw new PickleException(PickleFault.Truncated, "no STOP opcode", _pos);
            if (++_ops > _limits.MaxOpcodes) throw Over("too many opcodes", _limits.MaxOpcodes);
            byte op = _pickle[_pos++];
            if (_policy.Forbidden.Contains(op))
                throw Bad($"opcode {OpcodeNames[op]} is not allowed in {_limits.Use}");
            switch (op)
            {
                case (byte)'.':                                                    // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Bad("STOP with a malformed stack");
                    return _policy.Finish(_stack[0]);
                case 0x80:                                                         // PROTO
                {
                    long v = Take(1)[0];
                    if (v > 5) throw Bad($"pickle protocol {v}; allowed: 0 to 5");
                    break;
                }
                case 0x95: Take(8); break;                                         // FRAME (a hint only)
                case 0x97: throw Bad("out-of-band buffer (NEXT_BUFFER) is not allowed");
                case 0x98: break;                                                  // READONLY_BUFFER
                case (byte)'(':                                                    // MARK
                    if (_marks.Count >= _limits.MaxDepth) throw Over("MARKs nested too deep", _limits.MaxDepth);
                    _marks.Push(_stack.Count);
                    break;
                case (byte)'0': Pop(); break;                                      // POP
                case (byte)'1': PopMark(); break;                                  // POP_MARK
                case (byte)'2': { var v = Top(); _values--; Push(v); break; }      // DUP (no new value)
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'F':
                {
                    var s = Line();
                    Push(double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Bad($"malformed FLOAT '{Printable.Escape(s, 40)}'"));
                    break;
                }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'I':
                {
                    var s = Line();
                    if (s == "00") Push(false);
                    else if (s == "01") Push(true);
                    else Push(long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Bad($"malformed INT '{Printable.Escape(s, 40)}'"));
                    break;
                }
                case (byte)'L':
                {
                    var s = Line();
                    var digits = s.EndsWith('L') ? s[..^1] : s;
                    if (long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)) Push(v);
                    else if (digits.Length > 0 && digits.TrimStart('-').All(char.IsAsciiDigit)) Push(new PyBigInt(digits.Length / 2 + 1));
                    else throw Bad($"malformed LONG '{Printable.Escape(s, 40)}'");
                    break;
                }
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push(U(Take(1))); break;
                case (byte)'M': Push(U(Take(2))); break;
                case 0x8a: case 0x8b:                                              // LONG1, LONG4
                {
                    long n = op == 0x8a ? U(Take(1)) : BinaryPrimitives.ReadInt32LittleEndian(Take(4));
                    var b = Take(n);
                    if (n > 8) { Push(new PyBigInt(n)); break; }
                    long v = 0;
                    for (int k = b.Length - 1; k >= 0; k--) v = (v << 8) | b[k];
                    if (n > 0 && n < 8 && (b[^1] & 0x80) != 0) v -= 1L << (8 * (int)n);   // two's complement
                    Push(v);
                    break;
                }
                // Python 2 str (read as latin1 text, as encoding="latin1" does), Python 3 str, bytes.
                case (byte)'S':
                {
                    var s = Line(_limits.MaxBytes, "a STRING");
                    CountBytes(s.Length);
                    Push(s.Length >= 2 && (s[0] is '\'' or '"') && s[^1] == s[0] ? s[1..^1] : throw Bad("STRING without quotes"));
                    break;
                }
                case (byte)'V': Push(Text(LineBytes(_limits.MaxBytes, "a UNICODE"))); break;
                case (byte)'T': Push(Latin1(Take((uint)BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break;
                case (byte)'U': Push(Latin1(Take(U(Take(1))))); break;
                case (byte)'X': Push(Text(Take(U(Take(4))))); break;
                case 0x8c: Push(Text(Take(U(Take(1))))); break;
                case 0x8d: Push(Text(Take(Len8()))); break;
                case (byte)'B': { var b = Take(U(Take(4))); CountBytes(b.Length); Push(_policy.Bytes(b)); break; }
                case (byte)'C': { var b = Take(U(Take(1))); CountBytes(b.Length); Push(_policy.Bytes(b)); break; }
                case 0x8e: case 0x96: { var b = Take(Len8()); CountBytes(b.Length); Push(_policy.Bytes(b)); break; }
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'}': Push(new PyDict()); break;
                case 0x8f: Push(new PySet()); break;
                case (byte)'t': Push(Tuple(PopMark())); break;
                case 0x85: { var a = Pop(); Push(Tuple(a)); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(Tuple(a, b)); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(Tuple(a, b, c)); break; }
                case (byte)'l': { var items = PopMark(); var list = new List<object?>(); Append(list, items, "LIST"); Push(list); break; }
                case 0x91: { var items = PopMark(); var set = new PySet(); AddToSet(set, items); Push(set); break; }
                case (byte)'d': { var items = PopMark(); var d = new PyDict(); SetItems(d, items, "DICT"); Push(d); break; }
                case (byte)'a': { var v = Pop(); Append(Top(), [v], "APPEND"); break; }
                case (byte)'e': { var items = PopMark(); Append(Top(), items, "APPENDS"); break; }
                case 0x90: { var items = PopMark(); AddToSet(Top() as PySet ?? throw Bad($"ADDITEMS on a {PicklePolicy.Describe(Top())}"), items); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(Top(), [k, v], "SETITEM"); break; }
                case (byte)'u': { var items = PopMark(); SetItems(Top(), items, "SETITEMS"); break; }
                case (byte)'b': { var state = Pop(); _policy.Build(Top(), state); break; }   // BUILD
                case (byte)'c':                                                    // GLOBAL
                {
                    var module = Line(_limits.MaxNameLength, "a global's module");
                    var name = Line(_limits.MaxNameLength, "a global's name");
                    Push(Global(module, name));
                    break;
                }
                case 0x93:                                                         // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    if (module is not string m || name is not string n) throw Bad("STACK_GLOBAL whose module or name is not a str");
                    Push(Global(m, n));
                    break;
                }
                case 0x82: case 0x83: case 0x84:                                   // EXT1, EXT2, EXT4
                {
                    long code = U(Take(op == 0x82 ? 1 : op == 0x83 ? 2 : 4));
                    Push(Global("copyreg", $"_extension_registry[{code}]"));
                    break;
                }
                case (byte)'i':                                                    // INST
                {
                    var module = Line(_limits.MaxNameLength, "a global's module");
                    var name = Line(_limits.MaxNameLength, "a global's name");
                    var cls = Global(module, name);
                    Push(_policy.Reduce(cls, Tuple(PopMark())));
                    break;
                }
                case (byte)'o':                                                    // OBJ
                {
                    var items = PopMark();
                    if (items.Count == 0) throw Bad("OBJ without a class");
                    Push(_policy.Reduce(items[0], Tuple(items.Skip(1).ToList())));
                    break;
                }
                case 0x81: { var args = Pop(); var cls = Pop(); Push(_policy.NewObject(cls, args)); break; }          // NEWOBJ
                case 0x92: { Pop(); var args = Pop(); var cls = Pop(); Push(_policy.NewObject(cls, args)); break; }   // NEWOBJ_EX
                case (byte)'R': { var args = Pop(); var fn = Pop(); Push(_policy.Reduce(fn, args)); break; }        // REDUCE
                case (byte)'P': { var pid = Line(); CountBytes(pid.Length); Push(_policy.Persistent(pid)); break; }
                case (byte)'Q': Push(_policy.Persistent(Pop())); break;
                case (byte)'p': Memo(MemoKey(Line(64, "a memo key"))); break;
                case (byte)'q': Memo(U(Take(1))); break;
                case (byte)'r': Memo(U(Take(4))); break;
                case 0x94: Memo(_memo.Count); break;                               // MEMOIZE
                case (byte)'g': { var v = Get(MemoKey(Line(64, "a memo key"))); _values--; Push(v); break; }
                case (byte)'h': { var v = Get(U(Take(1))); _values--; Push(v); break; }
                case (byte)'j': { var v = Get(U(Take(4))); _values--; Push(v); break; }
                default:
                    throw Bad($"unknown pickle opcode 0x{op:x2}");
            }
        }
    }

    void AddToSet(PySet set, List<object?> items)
    {
        foreach (var v in items) { Holds(set, set.Items.Count + 1, v); set.Items.Add(v); }
    }
}
