using ResnetMnist.Core;

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
/// The state_dict policy of the one <see cref="PickleMachine"/>, for <c>torch.save</c> files (pretrained weights,
/// checkpoints, optimizer state): it builds inert values only, records the globals (judged afterwards against
/// <see cref="IsStateDictGlobal"/>, so that a refusal can name every foreign one), the storages of persistent ids and
/// the arguments of tensor rebuilds. Caps: measured on torchvision's resnet152 with an Adam optimizer state in one
/// <c>torch.save</c> (232 KB pickle: 75,689 opcodes, 17,369 memo entries, 36 KB of text, 4 globals, MARKs 6 deep),
/// each cap leaves a factor of 50 or more, and keeps a refused pickle under a few hundred MB of memory.
/// </summary>
public sealed class StateDictPickle : PicklePolicy
{
    /// <summary>Most dimensions a tensor may have (PyTorch's own limit is 64; resnet18 uses at most 4).</summary>
    public const int MaxDims = 64;

    /// <summary>The caps for one state_dict pickle.</summary>
    public static readonly PickleLimits StateDictLimits = new("a state_dict", MaxOpcodes: 4 << 20, MaxValues: 1 << 20,
        MaxMemo: 1 << 20, MaxItems: 1 << 20, MaxBytes: 16 << 20, MaxDepth: 64, MaxGlobals: 1024, MaxNameLength: 256);

    /// <summary>Bytes per element of the storage classes <c>torch.save</c> writes.</summary>
    public static readonly IReadOnlyDictionary<string, int> StorageElementSizes = new Dictionary<string, int>
    {
        ["DoubleStorage"] = 8, ["FloatStorage"] = 4, ["HalfStorage"] = 2, ["BFloat16Storage"] = 2, ["LongStorage"] = 8,
        ["IntStorage"] = 4, ["ShortStorage"] = 2, ["CharStorage"] = 1, ["ByteStorage"] = 1, ["BoolStorage"] = 1,
        ["ComplexFloatStorage"] = 8, ["ComplexDoubleStorage"] = 16,
    };

    /// <summary>
    /// Globals a <c>torch.save(state_dict)</c> (or optimizer state_dict) file may use: the part of PyTorch's
    /// <c>weights_only</c> unpickler's allow-list (torch/_weights_only_unpickler.py) that it uses. Anything else is
    /// refused before the pickle reaches an unpickler, because <c>torch.load</c> (weights_only=False, the default
    /// before PyTorch 2.6) would import and call it.
    /// </summary>
    public static bool IsStateDictGlobal(string global) =>
        global is "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor"
            or "torch.Size" or "torch.device"
        || (global.StartsWith("torch.", StringComparison.Ordinal) && StorageElementSizes.ContainsKey(global["torch.".Length..]));

    /// <summary>Globals that only appear when a whole <c>nn.Module</c> was pickled.</summary>
    public static bool IsWholeModelGlobal(string global) =>
        global == "torch._utils._rebuild_parameter"
        || global.StartsWith("torch.nn.", StringComparison.Ordinal)
        || global.StartsWith("torchvision.", StringComparison.Ordinal);

    /// <summary>The result of a call (REDUCE, NEWOBJ, INST, OBJ) that is not a tensor rebuild or an empty OrderedDict: nothing is called.</summary>
    sealed record Call(string? Function, object? Args);
    /// <summary>A bytes object, kept as its length.</summary>
    sealed record InertBytes(long Length);

    readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);
    readonly List<TensorRef> _tensors = [];

    StateDictPickle() { }

    public override PickleLimits Limits => StateDictLimits;

    /// <summary>Runs <paramref name="pickle"/> to its STOP opcode, executing nothing.</summary>
    /// <exception cref="PickleException">Malformed, truncated, or over a cap of <see cref="StateDictLimits"/>.</exception>
    public static PickleSummary Analyze(byte[] pickle)
    {
        var policy = new StateDictPickle();
        var (root, machine) = PickleMachine.Run(pickle, policy);
        return new PickleSummary(machine.Globals, policy._storages.Values.ToList(), policy._tensors, RootMetadata(root));
    }

    public override object Bytes(ReadOnlySpan<byte> bytes) => new InertBytes(bytes.Length);

    /// <summary>An object built by a call (an OrderedDict subclass, say) takes APPEND/SETITEM items too; they are not kept.</summary>
    public override bool TakesItems(object? target) => target is Call;

    public override object? Reduce(object? function, object? args)
    {
        var name = (function as PyGlobal)?.Name;
        if (name is "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor") _tensors.Add(Tensor(args));
        // OrderedDict(): a dict whose items (and BUILD state) are kept, like a plain one.
        if (name == "collections.OrderedDict" && args is object?[] { Length: 0 }) return new PyDict();
        return new Call(name, args);
    }

    public override object? NewObject(object? cls, object? args) => new Call((cls as PyGlobal)?.Name, args);

    /// <summary>BUILD: a dict's state is kept (for <c>_metadata</c>); any other target ignores it.</summary>
    public override void Build(object? target, object? state)
    {
        if (target is PyDict d) d.State = state;
    }

    /// <summary>The root dict's <c>_metadata</c> entries that are dicts of plain values (later keys win, as in Python).</summary>
    static IReadOnlyDictionary<string, IReadOnlyDictionary<string, object>> RootMetadata(object? root)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, object>>(StringComparer.Ordinal);
        if (root is not PyDict { State: PyDict state }) return result;
        if (!state.TryGet("_metadata", out var m) || m is not PyDict metadata) return result;
        foreach (var (key, value) in metadata.Items)
        {
            if (key is not string name || value is not PyDict entry) continue;
            var fields = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var (k, v) in entry.Items)
                if (k is string field && v is string or long or double or bool) fields[field] = v!;
            result[name] = fields;
        }
        return result;
    }

    public override object? Persistent(object? pid)
    {
        var storages = _storages;
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw Malformed("persistent id that is not a tensor storage");
        var type = (t[1] as PyGlobal)?.Name ?? throw Malformed("storage type is not a class");
        var shortType = type.StartsWith("torch.", StringComparison.Ordinal) ? type["torch.".Length..] : type;
        if (!StorageElementSizes.TryGetValue(shortType, out int size))
            throw Malformed($"unknown storage type {type}; allowed: torch.{string.Join(", torch.", StorageElementSizes.Keys)}");
        if (t[2] is not string key || key.Length == 0 || key.Length > 64 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            throw Malformed("storage key is not a plain record name");
        if (t[4] is not long numel || numel < 0 || numel > int.MaxValue)
            throw Malformed($"storage '{key}' has an invalid element count ({t[4] ?? "None"}; allowed: 0 to {int.MaxValue})");
        var s = new StorageRef(key, shortType, numel, size);
        if (storages.TryGetValue(key, out var seen))
        {
            if (seen != s) throw Malformed($"storage '{key}' is declared twice with different types or sizes");
            return seen;
        }
        storages[key] = s;
        return s;
    }

    static TensorRef Tensor(object? args)
    {
        if (args is not object?[] { Length: >= 4 } a) throw Malformed("tensor rebuild with too few arguments");
        if (a[0] is not StorageRef storage) throw Malformed("tensor rebuild whose first argument is not a storage");
        if (a[1] is not long offset || offset < 0) throw Malformed("tensor storage offset is not an integer >= 0");
        var size = Longs(a[2], "size");
        var stride = Longs(a[3], "stride");
        if (size.Length != stride.Length) throw Malformed($"tensor size has {size.Length} dimensions but its stride {stride.Length}");
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
        catch (OverflowException) { throw Malformed($"tensor shape [{string.Join(", ", size)}] with stride [{string.Join(", ", stride)}] overflows"); }
        if (numel > storage.Numel)
            throw Malformed($"tensor of shape [{string.Join(", ", size)}] ({numel} elements) is larger than its storage '{storage.Key}' ({storage.Numel} elements)");
        if (numel > 0 && last >= storage.Numel)
            throw Malformed($"tensor of shape [{string.Join(", ", size)}], stride [{string.Join(", ", stride)}], offset {offset} reads past its storage '{storage.Key}' ({storage.Numel} elements)");
        return new TensorRef(storage, offset, size, stride);
    }

    static long[] Longs(object? v, string what)
    {
        if (v is not object?[] t) throw Malformed($"tensor {what} is not a tuple");
        if (t.Length > MaxDims) throw Malformed($"tensor {what} has {t.Length} dimensions; allowed: at most {MaxDims}");
        var r = new long[t.Length];
        for (int i = 0; i < t.Length; i++)
            r[i] = t[i] is long x && x >= 0 ? x : throw Malformed($"tensor {what} holds {t[i] ?? "None"}; allowed: integers >= 0");
        return r;
    }
}
