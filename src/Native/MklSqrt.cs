namespace ResnetMnist.Native;

/// <summary>
/// MKL's vector square root as libtorch's <c>sqrt</c> runs it (<c>vmsSqrt</c>/<c>vmdSqrt</c>, exported by
/// <c>libtorch_cpu</c>, in ATen's mode). MKL picks its code path from the CPU and <c>MKL_ENABLE_INSTRUCTIONS</c> (set by
/// <see cref="KernelSet"/>); on some paths the result is the correctly rounded square root, on others not.
/// </summary>
public static unsafe class MklSqrt
{
    /// <summary>The mode ATen passes to VML: VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE.</summary>
    public const long VmlMode = 0x2 | 0x140000 | 0x100;

    /// <summary>Elements per call (8 KiB in float32): short enough that MKL never starts its own threads for one.</summary>
    public const int Chunk = 2048;

    static readonly nint VmsSqrt = NativeLoader.LibtorchExport("vmsSqrt");
    static readonly nint VmdSqrt = NativeLoader.LibtorchExport("vmdSqrt");

    /// <summary>
    /// MKL's C entry point <c>int MKL_Set_Num_Threads_Local(int)</c> (the lower-case export takes a pointer): a caller
    /// that runs square roots on its own worker threads sets MKL's thread count for itself to 1, as ATen's parallel
    /// loops do, instead of letting MKL start its thread team for 2 Ki elements from inside theirs.
    /// </summary>
    static readonly nint SetNumThreadsLocal = NativeLoader.LibtorchExport("MKL_Set_Num_Threads_Local");

    /// <summary>Whether MKL's square root for <typeparamref name="T"/> (float or double) and its thread setting are exported by libtorch.</summary>
    public static bool Available<T>() where T : unmanaged => SqrtOf<T>() != 0 && SetNumThreadsLocal != 0;

    /// <summary>Sets MKL's thread count for the calling thread; returns the previous setting (0: none).</summary>
    static int SetThreadsLocal(int n) => ((delegate* unmanaged<int, int>)SetNumThreadsLocal)(n);

    /// <summary>
    /// Runs MKL on the calling thread alone until disposed, then restores its previous setting (with
    /// <paramref name="active"/> false, does nothing): <c>using var _ = MklSqrt.OnThisThread();</c>.
    /// </summary>
    public static OneThread OnThisThread(bool active = true) => new(active);

    /// <summary>The scope of <see cref="OnThisThread"/>.</summary>
    public readonly struct OneThread : IDisposable
    {
        readonly int _previous;
        readonly bool _active;

        internal OneThread(bool active)
        {
            _active = active;
            _previous = active ? SetThreadsLocal(1) : 0;
        }

        /// <summary>Restores the calling thread's previous MKL thread count.</summary>
        public void Dispose()
        {
            if (_active) SetThreadsLocal(_previous);
        }
    }

    /// <summary>MKL's square root (ATen's mode) of <paramref name="n"/> elements; in place when <paramref name="from"/> is <paramref name="to"/>.</summary>
    public static void Sqrt<T>(T* from, T* to, int n) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) ((delegate* unmanaged<int, float*, float*, long, void>)VmsSqrt)(n, (float*)from, (float*)to, VmlMode);
        else ((delegate* unmanaged<int, double*, double*, long, void>)VmdSqrt)(n, (double*)from, (double*)to, VmlMode);
    }

    static nint SqrtOf<T>() => typeof(T) == typeof(float) ? VmsSqrt : typeof(T) == typeof(double) ? VmdSqrt : 0;
}
