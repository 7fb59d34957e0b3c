using ResnetMnist.Native;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>
/// One flat buffer per role (weights, gradients, each optimizer state) for the parameters of one optimizer, with every
/// parameter, its <c>.grad</c> and its state tensors re-pointed (<c>set_</c>, or assigning <c>.grad</c>) to a slice of
/// the matching buffer. An elementwise update then runs as a handful of libtorch calls over the whole model instead of
/// several per parameter tensor. The values are the same: each element goes through the same operations in the same
/// order, only the tensor they are part of is larger.
/// </summary>
/// <remarks>
/// Slices start at multiples of 16 elements (64 bytes for float32), as libtorch's own allocations are aligned, and the
/// gaps are zero in every buffer: a zero weight with a zero gradient and zero state stays zero under SGD, Adam and
/// AdamW. A parameter keeps its strides (a channels-last weight stays channels-last), since only its storage moves.
/// Anything that replaces one of these tensors afterwards (loading an optimizer checkpoint, re-laying state) is
/// noticed by <see cref="Bind"/>, which copies the new values into the buffer and re-points the tensor, so the
/// buffers never go stale.
/// </remarks>
sealed class FlatParameters(IReadOnlyList<Parameter> parameters, int stateCount) : IDisposable
{
    const long Align = 16;
    readonly Parameter[] _params = parameters.ToArray();
    long[]? _offsets;
    long[][]? _shapes, _strides;   // each parameter's, as laid out (read once: a shape or stride array costs TorchSharp a marshalled callback)
    Tensor? _weights, _grads;
    readonly Tensor?[] _states = new Tensor?[stateCount];

    /// <summary>The flat weights; valid after <see cref="Bind"/> returned true.</summary>
    public Tensor Weights => _weights!;
    /// <summary>The flat gradients; valid after <see cref="Bind"/> returned true.</summary>
    public Tensor Grads => _grads!;
    /// <summary>The flat buffer of optimizer state <paramref name="i"/>; valid after <see cref="Bind"/> returned true.</summary>
    public Tensor State(int i) => _states[i]!;

    /// <summary>
    /// Elements per chunk of an update: the update runs chunk by chunk, every operation of the sequence on one chunk
    /// before the next, so that the chunk's weights, gradients, state and temporaries (≈ 5 × 4 MiB in float32) stay in
    /// cache between operations. Measured (ResNet-18 Adam, optimizer phase per step, 2 threads): one pass of each
    /// operation over the whole 45 MB buffers 70 ms, chunks of 4 Mi elements 42 ms, 1 Mi 26 ms, 256 Ki 31 ms;
    /// TorchSharp's per-tensor step 37–47 ms.
    /// </summary>
    public const long ChunkElements = 1L << 20;

    /// <summary>The [start, start + length) ranges of the buffers, <see cref="ChunkElements"/> at a time (starts stay 64-byte aligned).</summary>
    public IEnumerable<(long Start, long Length)> Chunks()
    {
        long total = _weights!.numel();
        for (long start = 0; start < total; start += ChunkElements)
            yield return (start, Math.Min(ChunkElements, total - start));
    }

    /// <summary>
    /// Makes every parameter, gradient and state tensor a slice of its flat buffer (copying in any that is not one).
    /// Returns false, leaving everything as it was, when the parameters cannot share buffers (different dtypes or
    /// devices, a parameter that is not dense, a missing gradient): the caller then updates tensor by tensor.
    /// </summary>
    /// <param name="state">Get and set state tensor <c>i</c> of parameter <c>p</c>; a null state (SGD's momentum before
    /// its first step) stays null and its buffer is not made until <see cref="AdoptState"/>.</param>
    /// <param name="createGrads">Give a parameter without a gradient its zeroed slice of the gradient buffer (done when
    /// the optimizer is built, so that backward accumulates into the buffer from the first step on, as it does after a
    /// <c>zero_grad</c>); false: a missing gradient makes this return false.</param>
    /// <param name="replace">Where given, a state tensor that is not its slice is copied into the slice, replaced by
    /// a new tensor over that slice (<c>replace(p, i, slice)</c>) and disposed, instead of being re-pointed with
    /// <c>set_</c>: used for the tensors an optimizer checkpoint load puts in. Measured (ResNet-18 Adam): re-pointed, the
    /// 87 MB the unpickler's tensors were read into stayed in use in malloc's arena (a full collection did not free
    /// them, nor did <c>malloc_trim</c>), and a resumed run peaked ~90 MB above a fresh one; disposed, a full
    /// collection with finalizers returns them.</param>
    public bool Bind(Func<Parameter, int, Tensor?> state, bool createGrads = false, Action<Parameter, int, Tensor>? replace = null)
    {
        bool bound = BindSlices(state, createGrads, replace, out bool moved);
        // Where tensors moved into the buffers, the storages they had are free now (45 MB of weights for ResNet-18
        // when the optimizer is built); the heap keeps freed memory for reuse (NativeHeap.TrimThreshold), so give
        // them back at once. Not when nothing moved (every step asks): trimming there would hand back the step's
        // activations too, and the next step would fault them in afresh (measured: forward 110 -> 140 ms at batch 256).
        if (moved) NativeHeap.Trim();
        return bound;
    }

    bool BindSlices(Func<Parameter, int, Tensor?> state, bool createGrads, Action<Parameter, int, Tensor>? replace, out bool moved)
    {
        moved = false;
        if (_params.Length == 0 || TensorData is null) return false;
        using var scope = NewDisposeScope();
        if (AllBound(state)) return true;
        using var _ = no_grad();
        var first = _params[0];
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            if (p.dtype != first.dtype || p.device_type != first.device_type || p.device_index != first.device_index || !IsDense(p.shape, p.stride())) return false;
            var g = p.grad;
            if (g is null ? !createGrads : g.is_sparse || !g.shape.SequenceEqual(p.shape)) return false;
        }
        if (_offsets is null) Layout();
        _shapes = _params.Select(p => p.shape).ToArray();     // a parameter keeps its strides (channels-last or not)
        _strides = _params.Select(p => p.stride()).ToArray();
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            var slot = Slot(_weights!, i);
            if (!AtSlot(p, _weights!, i))
            {
                moved = true;
                slot.copy_(p);
                p.set_(slot);
            }
            var g = p.grad;
            var gslot = Slot(_grads!, i);
            if (g is null)
            {
                gslot.zero_();
                p.grad = gslot;
            }
            else if (!AtSlot(g, _grads!, i))
            {
                moved = true;
                gslot.copy_(g);
                p.grad = gslot;
            }
            for (int s = 0; s < _states.Length; s++)
            {
                var t = state(p, s);
                if (t is null) continue;
                _states[s] ??= zeros_like(_weights!).DetachFromDisposeScope();
                var sslot = Slot(_states[s]!, i);
                if (!AtSlot(t, _states[s]!, i))
                {
                    moved = true;
                    sslot.copy_(t);
                    if (replace is null) t.set_(sslot);
                    else
                    {
                        replace(p, s, sslot.DetachFromDisposeScope());
                        t.Dispose();
                    }
                }
            }
        }
        return true;
    }

    /// <summary>
    /// Gives every parameter state tensor <paramref name="s"/> as a slice of its buffer, after the caller filled the
    /// buffer (SGD's momentum is created at the first step as a copy of the gradient).
    /// </summary>
    public void AdoptState(int s, Tensor filled, Action<Parameter, Tensor> set)
    {
        _states[s] = filled;
        for (int i = 0; i < _params.Length; i++) set(_params[i], Slot(filled, i).DetachFromDisposeScope());
    }

    /// <summary>
    /// Zeroes every gradient at once (the flat buffer) when each is its slice of it; false, changing nothing, when one
    /// is not (the caller zeroes tensor by tensor).
    /// </summary>
    public bool ZeroGrads()
    {
        if (!GradsBound()) return false;
        _grads!.fill_(Core.Scalars.Zero);   // zero_() would leave a Scalar per call to the finalizer
        return true;
    }

    /// <summary>Whether every parameter's gradient is its slice of the flat gradient buffer (then zeroing the buffer zeroes them all).</summary>
    bool GradsBound()
    {
        if (_grads is null) return false;
        using var scope = NewDisposeScope();
        for (int i = 0; i < _params.Length; i++)
            if (_params[i].grad is not { } g || !AtSlot(g, _grads, i)) return false;
        return true;
    }

    /// <summary>
    /// Whether every parameter, gradient and state tensor already is its slice of its buffer, as laid out: the check
    /// of every step, made without asking libtorch for a shape or stride array. Each such array costs TorchSharp a
    /// callback marshalled to native code, whose native thunk lives until a garbage collection; a step's thousand
    /// of them, freed at random points between the step's large blocks, fragmented the heap (measured, ResNet-18 Adam,
    /// batch 256, one epoch: the heap's free memory grew 128 → 286 MiB and resident memory 590 → 690 MiB).
    /// </summary>
    bool AllBound(Func<Parameter, int, Tensor?> state)
    {
        if (_offsets is null) return false;
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            if (!AtSlot(p, _weights!, i) || p.grad is not { } g || !AtSlot(g, _grads!, i)) return false;
            for (int s = 0; s < _states.Length; s++)
                if (state(p, s) is { } t && (_states[s] is not { } buffer || !AtSlot(t, buffer, i))) return false;
        }
        return true;
    }

    /// <summary>Whether <paramref name="t"/> is parameter <paramref name="i"/>'s slice of <paramref name="flat"/>: its address, sizes and strides.</summary>
    bool AtSlot(Tensor t, Tensor flat, int i)
    {
        if (t.DataPtr() != flat.DataPtr() + (nint)(_offsets![i] * flat.ElementSize)) return false;
        long[] shape = _shapes![i], strides = _strides![i];
        if (t.Dimensions != shape.Length) return false;
        for (int d = 0; d < shape.Length; d++)
            if (t.size(d) != shape[d] || t.stride(d) != strides[d]) return false;
        return true;
    }

    void Layout()
    {
        var first = _params[0];
        var offsets = new long[_params.Length];
        long total = 0;
        for (int i = 0; i < _params.Length; i++)
        {
            offsets[i] = total;
            total += (_params[i].numel() + Align - 1) / Align * Align;
        }
        _offsets = offsets;
        _weights = zeros(total, dtype: first.dtype, device: first.device).DetachFromDisposeScope();
        _grads = zeros(total, dtype: first.dtype, device: first.device).DetachFromDisposeScope();
    }

    Tensor Slot(Tensor flat, int i) => flat.as_strided(_shapes![i], _strides![i], _offsets![i]);

    /// <summary>Whether strides lay out exactly <c>numel</c> elements with no gaps or overlaps (contiguous, channels-last, any permutation).</summary>
    static bool IsDense(long[] shape, long[] strides)
    {
        var dims = Enumerable.Range(0, shape.Length).Where(d => shape[d] != 1).OrderBy(d => strides[d]).ToArray();
        long expected = 1;
        foreach (var d in dims)
        {
            if (strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    /// <summary>
    /// libtorch's <c>Tensor::data_ptr()</c> (the address of a tensor's first element, storage offset included), which
    /// TorchSharp 0.107 exposes only for contiguous CPU tensors (<c>bytes</c>); bound once from its native entry point.
    /// Null if that entry point is missing (another TorchSharp version): then nothing is flattened.
    /// </summary>
    internal static nint DataOf(Tensor t) => TensorData!(t.Handle);

    static readonly Func<nint, nint>? TensorData = typeof(TorchSharp.torch).Assembly.GetType("TorchSharp.PInvoke.NativeMethods")
        ?.GetMethod("THSTensor_data", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static, [typeof(nint)])
        ?.CreateDelegate<Func<nint, nint>>();

    public void Dispose()
    {
        _weights?.Dispose();
        _grads?.Dispose();
        foreach (var s in _states) s?.Dispose();
    }
}

static class TensorAddress
{
    /// <summary>The address of the tensor's first element.</summary>
    public static nint DataPtr(this Tensor t) => FlatParameters.DataOf(t);
}
