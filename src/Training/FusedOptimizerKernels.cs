using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ResnetMnist.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

// SGD and Adam/AdamW as one pass over the flat buffers, in C# SIMD, bit-identical to libtorch's operation sequence
// (TorchSharp's per-tensor step) under the kernel set libtorch runs with. How libtorch 2.10 rounds each operation was
// measured element by element (float32, vector body and scalar tail):
//   add(x, alpha), addcmul(x, y, value): under avx2/avx512 one FMA, a·b + c rounded once; under default a·b and the
//     sum each rounded.
//   mul by a scalar, sqrt, tensor / scalar, + eps, addcdiv: each rounded on its own under every kernel set;
//     addcdiv(w, m, d, value) is w + (value·m) / d.
//   sqrt: MKL's vector square root (VML, high-accuracy mode, MklSqrt). Where an in-register form reproduces MKL's
//     code path on this CPU (probed once per process: SqrtLikeMkl.FormFor; the IEEE root, or the rsqrtps + Newton
//     sequence of MKL's SSE4.2 path), the step is one pass with the square root in registers. Where none does (MKL's
//     avx512 path is 1 ulp off the IEEE root in 0.67% of inputs), the square root is taken from MKL itself chunk by
//     chunk into a stack buffer; of zero and subnormal inputs, which MKL serves on a slow path, it is the IEEE square
//     root (vsqrtps/pd) in either case.
//   Scalars are computed in double and rounded once to the tensor's dtype, as ATen does.
// FlatOptimizerTests holds these kernels to TorchSharp's step element by element under each kernel set.

/// <summary>One pass of SGD or Adam/AdamW over flat, contiguous CPU buffers of float32 or float64.</summary>
static unsafe class FusedOptimizerKernels
{
    /// <summary>Elements per parallel work item: 32 Ki (128 KiB of each buffer in float32, so its 4–5 buffers sit in L2).</summary>
    const long Block = 1L << 15;

    /// <summary>
    /// Whether these kernels cover buffers like <paramref name="flat"/>: on the CPU, contiguous, float32 or float64, and
    /// for Adam (<paramref name="needsSqrt"/>) MKL's square root for that dtype exported by libtorch. Elsewhere the flat
    /// optimizers run libtorch's operations over the buffers.
    /// </summary>
    public static bool Covers(Tensor flat, bool needsSqrt)
    {
        if (flat.device_type != DeviceType.CPU || !flat.is_contiguous()) return false;
        return flat.dtype switch
        {
            ScalarType.Float32 => !needsSqrt || MklSqrt.Available<float>(),
            ScalarType.Float64 => !needsSqrt || MklSqrt.Available<double>(),
            _ => false,
        };
    }

    /// <summary>Whether libtorch's <c>add</c> with alpha and <c>addcmul</c> round once (FMA): under the avx2 and avx512 kernel sets.</summary>
    static bool LibtorchFuses => KernelSet.Current != "default";

    /// <summary>Adam's hyperparameters for one step, as doubles (the kernels round each once to the dtype).</summary>
    public readonly record struct AdamStep(double Lr, double Beta1, double Beta2, double Eps, double WeightDecay, bool Decoupled, long Step);

    /// <summary>SGD's hyperparameters for one step; <paramref name="FirstMomentumStep"/>: the momentum buffer becomes the gradient.</summary>
    public readonly record struct SgdStep(double Lr, double Momentum, double Dampening, double WeightDecay, bool Nesterov, bool FirstMomentumStep);

    /// <summary>One Adam (or, <see cref="AdamStep.Decoupled"/>, AdamW) step over the whole of each flat buffer.</summary>
    public static void Adam(Tensor w, Tensor g, Tensor m, Tensor v, AdamStep s)
    {
        if (w.dtype == ScalarType.Float32) Adam<float>(w, g, m, v, s);
        else Adam<double>(w, g, m, v, s);
    }

    /// <summary>One SGD step (L2 weight decay, momentum with dampening, Nesterov) over the buffers; <paramref name="buf"/> is null without momentum.</summary>
    public static void Sgd(Tensor w, Tensor g, Tensor? buf, SgdStep s)
    {
        if (w.dtype == ScalarType.Float32) Sgd<float>(w, g, buf, s);
        else Sgd<double>(w, g, buf, s);
    }

    static void Adam<T>(Tensor w, Tensor g, Tensor m, Tensor v, AdamStep s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double bc1 = 1.0 - Math.Pow(s.Beta1, s.Step), bc2 = 1.0 - Math.Pow(s.Beta2, s.Step);
        var k = new AdamScalars<T>(T.CreateChecked(s.Beta1), T.CreateChecked(1.0 - s.Beta1), T.CreateChecked(s.Beta2),
            T.CreateChecked(1.0 - s.Beta2), T.CreateChecked(Math.Sqrt(bc2)), T.CreateChecked(s.Eps), T.CreateChecked(-(s.Lr / bc1)),
            T.CreateChecked(s.WeightDecay), T.CreateChecked(1.0 - s.Lr * s.WeightDecay),
            L2: !s.Decoupled && s.WeightDecay != 0.0, Decoupled: s.Decoupled, Fma: LibtorchFuses);
        T* pw = (T*)w.DataPtr(), pg = (T*)g.DataPtr(), pm = (T*)m.DataPtr(), pv = (T*)v.DataPtr();
        var form = SqrtLikeMkl.FormFor<T>();
        var width = SqrtLikeMkl.WidthFor(form);
        if (form != SqrtForm.Mkl)
        {
            ForEachBlock(w.numel(), mklSingleThread: false, (start, length) =>
            {
                switch (width)
                {
                    case LaneWidth.Bits512: AdamRange<Lanes512<T>, T>(k, form, pw + start, pg + start, pm + start, pv + start, length); break;
                    case LaneWidth.Bits256: AdamRange<Lanes256<T>, T>(k, form, pw + start, pg + start, pm + start, pv + start, length); break;
                    default: AdamRange<Lane1<T>, T>(k, form, pw + start, pg + start, pm + start, pv + start, length); break;
                }
            });
            return;
        }
        ForEachBlock(w.numel(), mklSingleThread: true, (start, length) =>
        {
            switch (width)
            {
                case LaneWidth.Bits512: AdamBlock<Lanes512<T>, T>(k, pw + start, pg + start, pm + start, pv + start, length); break;
                case LaneWidth.Bits256: AdamBlock<Lanes256<T>, T>(k, pw + start, pg + start, pm + start, pv + start, length); break;
                default: AdamBlock<Lane1<T>, T>(k, pw + start, pg + start, pm + start, pv + start, length); break;
            }
        });
    }

    static void Sgd<T>(Tensor w, Tensor g, Tensor? buf, SgdStep s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var k = new SgdScalars<T>(T.CreateChecked(-s.Lr), T.CreateChecked(s.Momentum), T.CreateChecked(1.0 - s.Dampening),
            T.CreateChecked(s.WeightDecay), s.WeightDecay != 0.0, buf is not null, s.Nesterov, s.FirstMomentumStep, LibtorchFuses);
        T* pw = (T*)w.DataPtr(), pg = (T*)g.DataPtr(), pb = buf is null ? null : (T*)buf.DataPtr();
        var width = SqrtLikeMkl.WidthFor(null);
        ForEachBlock(w.numel(), mklSingleThread: false, (start, length) =>
        {
            T* b = pb is null ? null : pb + start;
            switch (width)
            {
                case LaneWidth.Bits512: SgdRange<Lanes512<T>, T>(k, pw + start, pg + start, b, 0, length); break;
                case LaneWidth.Bits256: SgdRange<Lanes256<T>, T>(k, pw + start, pg + start, b, 0, length); break;
                default: SgdRange<Lane1<T>, T>(k, pw + start, pg + start, b, 0, length); break;
            }
        });
    }

    /// <summary>
    /// Runs <paramref name="body"/> over [0, total) in blocks of <see cref="Block"/>, on libtorch's intra-op thread
    /// count: that many workers (the calling thread one of them) each take the next block until none is left, so a
    /// worker whose core is busy with another process simply takes fewer blocks. With <paramref name="mklSingleThread"/>
    /// each worker sets MKL's thread count for itself to 1 once (not once per block), so that MKL runs its square roots
    /// on that worker instead of starting its own thread team from inside ours, as ATen's parallel loops do.
    /// </summary>
    static void ForEachBlock(long total, bool mklSingleThread, Action<long, long> body)
    {
        long blocks = (total + Block - 1) / Block;
        int workers = (int)Math.Min(Math.Max(1, get_num_threads()), blocks);
        var next = new long[] { -1 };
        void Work()
        {
            using var _ = MklSqrt.OnThisThread(mklSingleThread);
            for (long b; (b = Interlocked.Increment(ref next[0])) < blocks;)
                body(b * Block, Math.Min(Block, total - b * Block));
        }
        if (workers <= 1) { Work(); return; }
        var others = new Task[workers - 1];
        for (int i = 0; i < others.Length; i++) others[i] = Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default);
        Work();
        Task.WaitAll(others);
    }

    readonly record struct AdamScalars<T>(T Beta1, T OneMinusBeta1, T Beta2, T OneMinusBeta2, T Bc2Sqrt, T Eps, T NegStepSize,
        T WeightDecay, T Decay, bool L2, bool Decoupled, bool Fma);

    readonly record struct SgdScalars<T>(T NegLr, T Momentum, T OneMinusDampening, T WeightDecay, bool L2, bool HasMomentum,
        bool Nesterov, bool First, bool Fma);

    /// <summary><c>a·b + c</c> as libtorch computes <c>c.add(b, alpha: a)</c> and <c>c.addcmul(…)</c>: one rounding (FMA) or two.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV MulAdd<TV, T>(TV a, TV b, TV c, bool fma) where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T> =>
        fma ? TV.Fma(a, b, c) : a * b + c;

    /// <summary>Adam over <paramref name="length"/> elements in one pass, MKL's square root reproduced in registers (<paramref name="form"/>).</summary>
    static void AdamRange<TV, T>(in AdamScalars<T> k, SqrtForm form, T* w, T* g, T* m, T* v, long length)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        long body = length - length % TV.Count;
        AdamLanes<TV, T>(k, form, w, g, m, v, 0, body);
        AdamLanes<Lane1<T>, T>(k, form, w, g, m, v, body, length);
    }

    /// <summary><see cref="AdamMoments{TV, T}"/> and <see cref="AdamUpdate{TV, T}"/> of each element at once, <c>sqrt(v)</c> by <see cref="SqrtLikeMkl.Root{TV, T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static void AdamLanes<TV, T>(in AdamScalars<T> k, SqrtForm form, T* w, T* g, T* m, T* v, long from, long to)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV b1 = TV.Splat(k.Beta1), c1 = TV.Splat(k.OneMinusBeta1), b2 = TV.Splat(k.Beta2), c2 = TV.Splat(k.OneMinusBeta2);
        TV wd = TV.Splat(k.WeightDecay), decay = TV.Splat(k.Decay), bc2 = TV.Splat(k.Bc2Sqrt), eps = TV.Splat(k.Eps), step = TV.Splat(k.NegStepSize);
        var roots = SqrtLikeMkl.Constants<TV, T>();
        for (long i = from; i < to; i += TV.Count)
        {
            TV gi = TV.Load(g + i), wi = TV.Load(w + i);
            if (k.Decoupled) wi = wi * decay;                                        // w.mul_(1 - lr·wd)
            else if (k.L2) gi = MulAdd<TV, T>(wd, wi, gi, k.Fma);                    // g.add(w, alpha: wd)
            TV mi = MulAdd<TV, T>(c1, gi, TV.Load(m + i) * b1, k.Fma);              // m.mul_(b1).add_(g, alpha: 1-b1)
            TV vi = MulAdd<TV, T>(c2 * gi, gi, TV.Load(v + i) * b2, k.Fma);         // v.mul_(b2).addcmul_(g, g, value: 1-b2)
            mi.Store(m + i);
            vi.Store(v + i);
            TV denom = SqrtLikeMkl.Root<TV, T>(form, vi, roots) / bc2 + eps;        // (v.sqrt() / √bc2).add_(eps)
            (wi + step * mi / denom).Store(w + i);                                   // w.addcdiv_(m, denom, value: -lr/bc1)
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static void AdamBlock<TV, T>(in AdamScalars<T> k, T* w, T* g, T* m, T* v, long length)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* sq = stackalloc T[MklSqrt.Chunk];
        for (long start = 0; start < length; start += MklSqrt.Chunk)
        {
            int n = (int)Math.Min(MklSqrt.Chunk, length - start);
            int body = n - n % TV.Count;
            bool tiny = AdamMoments<TV, T>(k, w + start, g + start, m + start, v + start, 0, body)
                      | AdamMoments<Lane1<T>, T>(k, w + start, g + start, m + start, v + start, body, n);
            if (!tiny) MklSqrt.Sqrt(v + start, sq, n);
            else
            {
                // MKL takes a slow path for each zero (4×) and subnormal (28×) input, and a parameter whose gradient is
                // always 0 (a unit that never fires) keeps v at 0. Those lanes get IEEE's square root instead, which is
                // MKL's there: MklSqrtTests checks every float32 subnormal and zero, and a sample of float64 ones.
                Tiny<TV, T>.Replace(v + start, sq, 0, body); Tiny<Lane1<T>, T>.Replace(v + start, sq, body, n);
                MklSqrt.Sqrt(sq, sq, n);
                Tiny<TV, T>.Patch(v + start, sq, 0, body); Tiny<Lane1<T>, T>.Patch(v + start, sq, body, n);
            }
            AdamUpdate<TV, T>(k, w + start, m + start, sq, 0, body);
            AdamUpdate<Lane1<T>, T>(k, w + start, m + start, sq, body, n);
        }
    }

    /// <summary>
    /// The second moments MKL's square root is slow on: zero (either sign) and subnormal, i.e. 0 ≤ v &lt; the smallest
    /// normal number. Negative, infinite and NaN values are left to MKL (a diverged run's values, whatever MKL makes of them).
    /// </summary>
    static class Tiny<TV, T> where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        static T MinNormal => SqrtLikeMkl.Bounds<T>.MinNormal;

        /// <summary>Whether any lane of <paramref name="v"/> is tiny.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Any(TV v) => TV.AnyInRange(v, TV.Splat(T.Zero), TV.Splat(MinNormal));

        /// <summary><c>to[i] = v[i]</c>, with 1 in place of each tiny value (an input MKL takes its fast path on).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Replace(T* v, T* to, int from, int end)
        {
            TV zero = TV.Splat(T.Zero), min = TV.Splat(MinNormal), one = TV.Splat(T.One);
            for (int i = from; i < end; i += TV.Count)
            {
                TV x = TV.Load(v + i);
                TV.SelectInRange(x, zero, min, one, x).Store(to + i);
            }
        }

        /// <summary><c>sq[i] = √v[i]</c> (IEEE, correctly rounded) where <c>v[i]</c> is tiny; the other lanes keep MKL's.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Patch(T* v, T* sq, int from, int end)
        {
            TV zero = TV.Splat(T.Zero), min = TV.Splat(MinNormal);
            for (int i = from; i < end; i += TV.Count)
            {
                TV x = TV.Load(v + i);
                TV.SelectInRange(x, zero, min, TV.Sqrt(x), TV.Load(sq + i)).Store(sq + i);
            }
        }
    }

    /// <summary>AdamW's decay of the weights, L2 decay of the gradient, then <c>m = b1·m + (1-b1)·g</c>, <c>v = b2·v + (1-b2)·g·g</c>; whether any new <c>v</c> is tiny (<see cref="Tiny{TV, T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static bool AdamMoments<TV, T>(in AdamScalars<T> k, T* w, T* g, T* m, T* v, int from, int to)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV b1 = TV.Splat(k.Beta1), c1 = TV.Splat(k.OneMinusBeta1), b2 = TV.Splat(k.Beta2), c2 = TV.Splat(k.OneMinusBeta2);
        TV wd = TV.Splat(k.WeightDecay), decay = TV.Splat(k.Decay);
        bool tiny = false;
        for (int i = from; i < to; i += TV.Count)
        {
            TV gi = TV.Load(g + i);
            if (k.Decoupled) (TV.Load(w + i) * decay).Store(w + i);                  // w.mul_(1 - lr·wd)
            else if (k.L2) gi = MulAdd<TV, T>(wd, TV.Load(w + i), gi, k.Fma);         // g.add(w, alpha: wd)
            MulAdd<TV, T>(c1, gi, TV.Load(m + i) * b1, k.Fma).Store(m + i);           // m.mul_(b1).add_(g, alpha: 1-b1)
            TV vi = MulAdd<TV, T>(c2 * gi, gi, TV.Load(v + i) * b2, k.Fma);           // v.mul_(b2).addcmul_(g, g, value: 1-b2)
            vi.Store(v + i);
            tiny |= Tiny<TV, T>.Any(vi);
        }
        return tiny;
    }

    /// <summary><c>w.addcdiv_(m, sqrt(v) / √bc2 + eps, value: -lr/bc1)</c>, with <c>sqrt(v)</c> already in <paramref name="sq"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static void AdamUpdate<TV, T>(in AdamScalars<T> k, T* w, T* m, T* sq, int from, int to)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV bc2 = TV.Splat(k.Bc2Sqrt), eps = TV.Splat(k.Eps), step = TV.Splat(k.NegStepSize);
        for (int i = from; i < to; i += TV.Count)
        {
            TV denom = TV.Load(sq + i) / bc2 + eps;
            (TV.Load(w + i) + step * TV.Load(m + i) / denom).Store(w + i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static void SgdRange<TV, T>(in SgdScalars<T> k, T* w, T* g, T* buf, long from, long to)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        long body = from + (to - from) / TV.Count * TV.Count;
        SgdLanes<TV, T>(k, w, g, buf, from, body);
        SgdLanes<Lane1<T>, T>(k, w, g, buf, body, to);
    }

    /// <summary>TorchSharp's SGD: <c>g = g.add(w, wd)</c>; <c>buf = g</c> (first step) or <c>buf.mul_(mu).add_(g, 1-dampening)</c>;
    /// <c>g = nesterov ? g.add(buf, mu) : buf</c>; <c>w.add_(g, -lr)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loops: optimised at once, not after tiering
    static void SgdLanes<TV, T>(in SgdScalars<T> k, T* w, T* g, T* buf, long from, long to)
        where TV : struct, ILanes<TV, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        TV lr = TV.Splat(k.NegLr), mu = TV.Splat(k.Momentum), damp = TV.Splat(k.OneMinusDampening), wd = TV.Splat(k.WeightDecay);
        for (long i = from; i < to; i += TV.Count)
        {
            TV wi = TV.Load(w + i), gi = TV.Load(g + i);
            if (k.L2) gi = MulAdd<TV, T>(wd, wi, gi, k.Fma);
            if (k.HasMomentum)
            {
                TV b = k.First ? gi : MulAdd<TV, T>(damp, gi, TV.Load(buf + i) * mu, k.Fma);
                b.Store(buf + i);
                gi = k.Nesterov ? MulAdd<TV, T>(mu, b, gi, k.Fma) : b;
            }
            MulAdd<TV, T>(lr, gi, wi, k.Fma).Store(w + i);
        }
    }
}

/// <summary>A register of <typeparamref name="T"/> lanes with the few operations the kernels use, each rounded as IEEE 754 says.</summary>
interface ILanes<TSelf, T> where TSelf : struct, ILanes<TSelf, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    static abstract int Count { get; }
    static abstract unsafe TSelf Load(T* p);
    unsafe void Store(T* p);
    static abstract TSelf Splat(T x);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    /// <summary><c>a·b + c</c> rounded once.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    /// <summary>The square root, correctly rounded.</summary>
    static abstract TSelf Sqrt(TSelf a);
    /// <summary>The CPU's reciprocal-square-root estimate (<c>rsqrtps</c>/<c>rsqrtss</c>), float32 lanes of at most 256 bits only.</summary>
    static abstract TSelf RsqrtEstimate(TSelf a);
    /// <summary>Whether every lane <c>x</c> has <c>lo ≤ x ≤ hi</c> (false for NaN).</summary>
    static abstract bool AllInRange(TSelf x, TSelf lo, TSelf hi);
    /// <summary>Whether any lane <c>x</c> has <c>lo ≤ x &lt; hi</c>.</summary>
    static abstract bool AnyInRange(TSelf x, TSelf lo, TSelf hi);
    /// <summary>Per lane: <paramref name="inRange"/> where <c>lo ≤ x &lt; hi</c>, else <paramref name="otherwise"/>.</summary>
    static abstract TSelf SelectInRange(TSelf x, TSelf lo, TSelf hi, TSelf inRange, TSelf otherwise);
}

readonly struct Lanes512<T>(Vector512<T> v) : ILanes<Lanes512<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    readonly Vector512<T> _v = v;
    public static int Count => Vector512<T>.Count;
    public static unsafe Lanes512<T> Load(T* p) => new(Vector512.Load(p));
    public unsafe void Store(T* p) => _v.Store(p);
    public static Lanes512<T> Splat(T x) => new(Vector512.Create(x));
    public static Lanes512<T> operator +(Lanes512<T> a, Lanes512<T> b) => new(a._v + b._v);
    public static Lanes512<T> operator -(Lanes512<T> a, Lanes512<T> b) => new(a._v - b._v);
    public static Lanes512<T> operator *(Lanes512<T> a, Lanes512<T> b) => new(a._v * b._v);
    public static Lanes512<T> operator /(Lanes512<T> a, Lanes512<T> b) => new(a._v / b._v);
    public static Lanes512<T> Fma(Lanes512<T> a, Lanes512<T> b, Lanes512<T> c) => typeof(T) == typeof(float)
        ? new(Vector512.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>())
        : new(Vector512.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    public static Lanes512<T> Sqrt(Lanes512<T> a) => new(Vector512.Sqrt(a._v));
    public static Lanes512<T> RsqrtEstimate(Lanes512<T> a) => throw new NotSupportedException("rsqrtps has no 512-bit form with the same estimate");
    public static bool AllInRange(Lanes512<T> x, Lanes512<T> lo, Lanes512<T> hi) =>
        Vector512.GreaterThanOrEqualAll(x._v, lo._v) && Vector512.LessThanOrEqualAll(x._v, hi._v);
    static Vector512<T> InRange(Vector512<T> x, Vector512<T> lo, Vector512<T> hi) => Vector512.GreaterThanOrEqual(x, lo) & Vector512.LessThan(x, hi);
    public static bool AnyInRange(Lanes512<T> x, Lanes512<T> lo, Lanes512<T> hi) => InRange(x._v, lo._v, hi._v) != Vector512<T>.Zero;
    public static Lanes512<T> SelectInRange(Lanes512<T> x, Lanes512<T> lo, Lanes512<T> hi, Lanes512<T> inRange, Lanes512<T> otherwise) =>
        new(Vector512.ConditionalSelect(InRange(x._v, lo._v, hi._v), inRange._v, otherwise._v));
}

readonly struct Lanes256<T>(Vector256<T> v) : ILanes<Lanes256<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    readonly Vector256<T> _v = v;
    public static int Count => Vector256<T>.Count;
    public static unsafe Lanes256<T> Load(T* p) => new(Vector256.Load(p));
    public unsafe void Store(T* p) => _v.Store(p);
    public static Lanes256<T> Splat(T x) => new(Vector256.Create(x));
    public static Lanes256<T> operator +(Lanes256<T> a, Lanes256<T> b) => new(a._v + b._v);
    public static Lanes256<T> operator -(Lanes256<T> a, Lanes256<T> b) => new(a._v - b._v);
    public static Lanes256<T> operator *(Lanes256<T> a, Lanes256<T> b) => new(a._v * b._v);
    public static Lanes256<T> operator /(Lanes256<T> a, Lanes256<T> b) => new(a._v / b._v);
    public static Lanes256<T> Fma(Lanes256<T> a, Lanes256<T> b, Lanes256<T> c) => typeof(T) == typeof(float)
        ? new(Vector256.FusedMultiplyAdd(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>())
        : new(Vector256.FusedMultiplyAdd(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    public static Lanes256<T> Sqrt(Lanes256<T> a) => new(Vector256.Sqrt(a._v));
    public static Lanes256<T> RsqrtEstimate(Lanes256<T> a) => typeof(T) == typeof(float)
        ? new(System.Runtime.Intrinsics.X86.Avx.ReciprocalSqrt(a._v.AsSingle()).As<float, T>())
        : throw new NotSupportedException("rsqrtps is float32 only");
    public static bool AllInRange(Lanes256<T> x, Lanes256<T> lo, Lanes256<T> hi) =>
        Vector256.GreaterThanOrEqualAll(x._v, lo._v) && Vector256.LessThanOrEqualAll(x._v, hi._v);
    static Vector256<T> InRange(Vector256<T> x, Vector256<T> lo, Vector256<T> hi) => Vector256.GreaterThanOrEqual(x, lo) & Vector256.LessThan(x, hi);
    public static bool AnyInRange(Lanes256<T> x, Lanes256<T> lo, Lanes256<T> hi) => InRange(x._v, lo._v, hi._v) != Vector256<T>.Zero;
    public static Lanes256<T> SelectInRange(Lanes256<T> x, Lanes256<T> lo, Lanes256<T> hi, Lanes256<T> inRange, Lanes256<T> otherwise) =>
        new(Vector256.ConditionalSelect(InRange(x._v, lo._v, hi._v), inRange._v, otherwise._v));
}

/// <summary>One lane: the scalar tail (and the whole range where no vector unit is accelerated).</summary>
readonly struct Lane1<T>(T v) : ILanes<Lane1<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    readonly T _v = v;
    public static int Count => 1;
    public static unsafe Lane1<T> Load(T* p) => new(*p);
    public unsafe void Store(T* p) => *p = _v;
    public static Lane1<T> Splat(T x) => new(x);
    public static Lane1<T> operator +(Lane1<T> a, Lane1<T> b) => new(a._v + b._v);
    public static Lane1<T> operator -(Lane1<T> a, Lane1<T> b) => new(a._v - b._v);
    public static Lane1<T> operator *(Lane1<T> a, Lane1<T> b) => new(a._v * b._v);
    public static Lane1<T> operator /(Lane1<T> a, Lane1<T> b) => new(a._v / b._v);
    public static Lane1<T> Fma(Lane1<T> a, Lane1<T> b, Lane1<T> c) => new(T.FusedMultiplyAdd(a._v, b._v, c._v));
    public static Lane1<T> Sqrt(Lane1<T> a) => new(T.Sqrt(a._v));
    public static Lane1<T> RsqrtEstimate(Lane1<T> a) => typeof(T) == typeof(float)
        ? new((T)(object)System.Runtime.Intrinsics.X86.Sse.ReciprocalSqrtScalar(Vector128.CreateScalarUnsafe((float)(object)a._v)).ToScalar())
        : throw new NotSupportedException("rsqrtss is float32 only");
    public static bool AllInRange(Lane1<T> x, Lane1<T> lo, Lane1<T> hi) => x._v >= lo._v && x._v <= hi._v;
    public static bool AnyInRange(Lane1<T> x, Lane1<T> lo, Lane1<T> hi) => x._v >= lo._v && x._v < hi._v;
    public static Lane1<T> SelectInRange(Lane1<T> x, Lane1<T> lo, Lane1<T> hi, Lane1<T> inRange, Lane1<T> otherwise) =>
        AnyInRange(x, lo, hi) ? inRange : otherwise;
}
