using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ResnetMnist.Native;

namespace ResnetMnist.Training;

/// <summary>How the fused Adam step computes <c>sqrt(v)</c> so that it is libtorch's (MKL's) square root, bit for bit.</summary>
public enum SqrtForm
{
    /// <summary>MKL's own function, called per chunk into a buffer (where no in-register form reproduces it).</summary>
    Mkl,

    /// <summary>The IEEE (correctly rounded) square root, <c>vsqrtps</c>/<c>vsqrtpd</c>: MKL's result where its code path computes it.</summary>
    Ieee,

    /// <summary>
    /// float32 only: MKL's SSE4.2 code path (<c>mkl_vml_kernel_sSqrt_EXHAynn</c>, which MKL runs on AMD CPUs), read from
    /// its machine code: <c>y = rsqrtps(x)</c>, <c>s = x·y</c>, <c>h = y·½</c>, <c>t = ½ − s·h</c>, <c>s' = s·t + s</c>,
    /// <c>h' = h·t + h</c>, <c>√x = (x − s'·s')·h' + s'</c>, each operation rounded on its own. It rests on the CPU's
    /// reciprocal-square-root estimate, which differs between CPU makers, as MKL's result does.
    /// </summary>
    RsqrtNewton,
}

/// <summary>Lane widths of the fused step's loops (<see cref="SqrtLikeMkl.WidthFor"/>).</summary>
internal enum LaneWidth { Scalar, Bits256, Bits512 }

/// <summary>
/// Picks, once per process and dtype, the in-register square root that reproduces MKL's (<see cref="MklSqrt"/>) on a
/// fixed probe set, and computes it. MKL chooses its code path from the CPU and <c>MKL_ENABLE_INSTRUCTIONS</c>: on one
/// CPU its <c>sqrt</c> is correctly rounded, on another 1 ulp off in 0.67% (AVX-512) or 17% (SSE4.2 path on AMD) of
/// inputs. A form is taken only where it matches MKL on every probe input; <c>SqrtLikeMklTests</c> then checks the
/// chosen float32 form against MKL on every mantissa of ten binary exponents, 16 Mi random floats and the special values.
/// </summary>
public static unsafe class SqrtLikeMkl
{
    /// <summary>Lanes outside [smallest normal, this] go to MKL's rare-input path (zero and subnormal: the IEEE root;
    /// negative, infinite, NaN and the 4,096 largest floats: MKL itself): bits 0x7F7FF000 in float32, as MKL's fast path.</summary>
    static readonly float LargestFastSingle = BitConverter.Int32BitsToSingle(0x7F7FF000);

    static class Chosen<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static readonly SqrtForm Form = Choose<T>();
    }

    /// <summary>The form the fused step uses for <typeparamref name="T"/> in this process (probed once, at the first step).</summary>
    public static SqrtForm FormFor<T>() where T : unmanaged, IFloatingPointIeee754<T> => Chosen<T>.Form;

    /// <summary>The in-register forms tried for <typeparamref name="T"/>, in order.</summary>
    public static IReadOnlyList<SqrtForm> Candidates<T>() =>
        typeof(T) == typeof(float) && Vector128.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? [SqrtForm.Ieee, SqrtForm.RsqrtNewton]
            : [SqrtForm.Ieee];

    static SqrtForm Choose<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!MklSqrt.Available<T>()) return SqrtForm.Mkl;
        foreach (var form in Candidates<T>())
            if (MatchesMklOnProbe<T>(form)) return form;
        return SqrtForm.Mkl;
    }

    /// <summary>
    /// Whether <paramref name="form"/>, in the vector and in the scalar code, gives MKL's result bit for bit on every
    /// probe input (<see cref="ProbeInputs{T}"/>), one binary exponent at a time (buffers of 16 KiB, nothing kept).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once, at the first step: tier-0 code made it ~50 ms slower
    public static bool MatchesMklOnProbe<T>(SqrtForm form) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = ProbePerExponent<T>();
        T[] x = new T[n], mkl = new T[n], mine = new T[n];
        for (int e = 0; e < ProbeExponents<T>(); e++)
        {
            ProbeInputs<T>(e, x);
            Mkl<T>(x, mkl);
            foreach (var scalar in new[] { false, true })
            {
                Compute(form, x, mine, scalar);
                if (FirstDifference<T>(mkl, mine) >= 0) return false;
            }
        }
        return true;
    }

    /// <summary>The binary exponents of the normal numbers of <typeparamref name="T"/> (254 in float32, 2,046 in float64).</summary>
    public static int ProbeExponents<T>() => typeof(T) == typeof(float) ? 254 : 2046;

    /// <summary>Probe inputs per binary exponent: 4,096 in float32, 512 in float64 (~1 Mi in all either way).</summary>
    public static int ProbePerExponent<T>() => typeof(T) == typeof(float) ? 4096 : 512;

    /// <summary>
    /// The probe inputs of the <paramref name="exponent"/>-th binary exponent (from 0, the smallest normal numbers) into
    /// <paramref name="into"/> (<see cref="ProbePerExponent{T}"/> long): the smallest and largest mantissa and the rest
    /// drawn at random (SplitMix64, seeded per exponent). An approximating code path misses correct rounding in 0.67–17% of inputs,
    /// so a form that differs from MKL's is found among the ~1 Mi.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ProbeInputs<T>(int exponent, Span<T> into) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool single = typeof(T) == typeof(float);
        int mantissaBits = single ? 23 : 52;
        ulong state = 20261207UL + (ulong)exponent;
        for (int j = 0; j < ProbePerExponent<T>(); j++)
        {
            long mantissa = j == 0 ? 0 : j == 1 ? (1L << mantissaBits) - 1 : (long)(SplitMix64(ref state) >> (64 - mantissaBits));
            long bits = ((long)(exponent + 1) << mantissaBits) | mantissa;
            into[j] = single ? (T)(object)BitConverter.Int32BitsToSingle((int)bits) : (T)(object)BitConverter.Int64BitsToDouble(bits);
        }
    }

    /// <summary>SplitMix64 (Steele, Lea and Flood 2014): a fast, well-mixed 64-bit sequence for the probe's mantissas
    /// (<see cref="Random"/>'s seeded generator took ~25 ms for the ~1 Mi draws at the first step).</summary>
    static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>MKL's square root of <paramref name="x"/>, in calls of varying length (so that MKL's remainder handling is exercised too).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Mkl<T>(ReadOnlySpan<T> x, Span<T> r) where T : unmanaged
    {
        int[] lengths = [MklSqrt.Chunk, 7, 1, 13, MklSqrt.Chunk - 3];
        using var _ = MklSqrt.OnThisThread();
        fixed (T* px = x, pr = r)
            for (int i = 0, k = 0; i < x.Length; i += lengths[k++ % lengths.Length])
                MklSqrt.Sqrt(px + i, pr + i, Math.Min(lengths[k % lengths.Length], x.Length - i));
    }

    /// <summary><paramref name="form"/>'s square root of <paramref name="x"/>, through the vector code the fused step runs
    /// (its scalar tail code only, where <paramref name="scalar"/>).</summary>
    public static void Compute<T>(SqrtForm form, ReadOnlySpan<T> x, Span<T> r, bool scalar = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (form == SqrtForm.Mkl) { Mkl(x, r); return; }
        fixed (T* px = x, pr = r)
        {
            int n = x.Length, i = 0;
            switch (scalar ? LaneWidth.Scalar : WidthFor(form))
            {
                case LaneWidth.Bits512: i = RootLanes<Lanes512<T>, T>(form, px, pr, 0, n); break;
                case LaneWidth.Bits256: i = RootLanes<Lanes256<T>, T>(form, px, pr, 0, n); break;
            }
            RootLanes<Lane1<T>, T>(form, px, pr, i, n);
        }
    }

    /// <summary><see cref="Root{TV, T}"/> over whole vectors of <paramref name="x"/> from <paramref name="from"/>; returns
    /// where it stopped. One method per lane width, so that the JIT inlines every lane operation (in one method holding all
    /// three widths it ran out of inlining budget, and the scalar code called each operation: ~50 ns per element).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int RootLanes<TV, T>(SqrtForm form, T* x, T* r, int from, int n) where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        var c = Constants<TV, T>();
        int i = from;
        for (; i + TV.Count <= n; i += TV.Count) Root<TV, T>(form, TV.Load(x + i), c).Store(r + i);
        return i;
    }

    /// <summary>
    /// The widest lanes the fused step runs a loop in, for one place that decides it: 512 bits where they are
    /// accelerated, else 256, else scalar; with a square root in registers (<paramref name="form"/> other than
    /// <see cref="SqrtForm.Mkl"/>) 512 bits for the IEEE root only (MKL's SSE path is reproduced with the 128/256-bit
    /// <c>rsqrtps</c> estimate only). Null: a loop without a square root in registers.
    /// </summary>
    internal static LaneWidth WidthFor(SqrtForm? form) =>
        Vector512.IsHardwareAccelerated && form != SqrtForm.RsqrtNewton ? LaneWidth.Bits512
        : Vector256.IsHardwareAccelerated ? LaneWidth.Bits256 : LaneWidth.Scalar;

    /// <summary>The index of the first element whose bits differ, or −1.</summary>
    public static long FirstDifference<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged
    {
        var x = System.Runtime.InteropServices.MemoryMarshal.AsBytes(a);
        var y = System.Runtime.InteropServices.MemoryMarshal.AsBytes(b);
        int at = x.CommonPrefixLength(y);
        return at == x.Length && x.Length == y.Length ? -1 : at / Unsafe.SizeOf<T>();
    }

    /// <summary>
    /// <c>sqrt(x)</c> as MKL computes it, in <paramref name="form"/> (not <see cref="SqrtForm.Mkl"/>): lanes on MKL's
    /// fast path in registers; a vector with any other lane is finished lane by lane (<see cref="RareLanes{TV, T}"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Root<TV, T>(SqrtForm form, TV x, in RootConstants<TV> c) where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV root = form == SqrtForm.Ieee ? TV.Sqrt(x) : RsqrtNewton<TV, T>(x, c.Half);
        if (TV.AllInRange(x, c.MinNormal, c.LargestFast)) return root;
        root = TV.SelectInRange(x, c.Zero, c.MinNormal, TV.Sqrt(x), root);   // zero and subnormal: the IEEE root, as MKL's
        return TV.AllInRange(x, c.Zero, c.LargestFast) ? root : RareLanes<TV, T>(x, root);
    }

    /// <summary>The constants <see cref="Root{TV, T}"/> uses, splatted once per loop.</summary>
    internal readonly struct RootConstants<TV>(TV zero, TV minNormal, TV largestFast, TV half)
    {
        public readonly TV Zero = zero, MinNormal = minNormal, LargestFast = largestFast, Half = half;
    }

    /// <summary><see cref="RootConstants{TV}"/> for <typeparamref name="T"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static RootConstants<TV> Constants<TV, T>() where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T> =>
        new(TV.Splat(T.Zero), TV.Splat(Bounds<T>.MinNormal), TV.Splat(Bounds<T>.LargestFast), TV.Splat(T.CreateChecked(0.5)));

    /// <summary>MKL's SSE4.2 path (<see cref="SqrtForm.RsqrtNewton"/>), float32 lanes of at most 256 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV RsqrtNewton<TV, T>(TV x, TV half) where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV y = TV.RsqrtEstimate(x);
        TV s = x * y, h = y * half;
        TV t = half - s * h;
        TV s1 = s * t + s, h1 = h * t + h;
        return (x - s1 * s1) * h1 + s1;
    }

    /// <summary>The lanes off MKL's fast path and not zero or subnormal (those get the IEEE root in registers, which is
    /// MKL's: <c>MklSqrtTests</c>): negative, infinite, NaN and the largest values get MKL's own, one call per lane.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static TV RareLanes<TV, T>(TV x, TV root) where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* xs = stackalloc T[TV.Count], rs = stackalloc T[TV.Count];
        x.Store(xs);
        root.Store(rs);
        using (MklSqrt.OnThisThread())
            for (int i = 0; i < TV.Count; i++)
                if (!(xs[i] >= T.Zero && xs[i] <= Bounds<T>.LargestFast)) MklSqrt.Sqrt(xs + i, rs + i, 1);
        return TV.Load(rs);
    }

    /// <summary>The fast path's bounds: the smallest normal number, and the largest input served in registers (float32:
    /// MKL's own bound; float64, where only the IEEE form is tried: a margin below the largest double, above which MKL is asked).</summary>
    internal static class Bounds<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static readonly T MinNormal = typeof(T) == typeof(float) ? (T)(object)BitConverter.Int32BitsToSingle(0x00800000) : (T)(object)BitConverter.Int64BitsToDouble(0x0010000000000000);
        public static readonly T LargestFast = typeof(T) == typeof(float) ? (T)(object)LargestFastSingle : (T)(object)BitConverter.Int64BitsToDouble(0x7FEFFE0000000000);
    }
}
