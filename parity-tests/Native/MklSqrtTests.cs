using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests.Native;

/// <summary>
/// What the fused Adam step rests on where it does not call MKL: of zero and of every subnormal input, MKL's vector
/// square root (<c>vmsSqrt</c>/<c>vmdSqrt</c> in ATen's mode, the one libtorch's <c>sqrt</c> runs) gives the IEEE
/// square root, bit for bit. Checked where the tests run, on that CPU and MKL's code path for it: every float32
/// subnormal and both zeros, and a million float64 subnormals drawn at random with the extremes.
/// </summary>
[TestFixture, Category("Native")]
public sealed class MklSqrtTests
{
    /// <summary>VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE, as ATen passes it.</summary>
    const long Mode = MklSqrt.VmlMode;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void SqrtF(int n, float[] a, float[] r, long mode);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void SqrtD(int n, double[] a, double[] r, long mode);

    static T Export<T>(string name) where T : Delegate
    {
        var fn = NativeLoader.LibtorchExport(name);
        Assert.That(fn, Is.Not.EqualTo(IntPtr.Zero), $"{name} is exported by libtorch_cpu");
        return Marshal.GetDelegateForFunctionPointer<T>(fn);
    }

    /// <summary>Each <c>r[i]</c> is the IEEE (correctly rounded) square root of <c>x[i]</c>, bit for bit (so -0 is not 0).</summary>
    static void AssertIeeeSquareRoots<T>(T[] x, T[] r) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var expected = x.Select(T.Sqrt).ToArray();
        int size = Unsafe.SizeOf<T>(), mismatches = 0;
        ReadOnlySpan<byte> got = MemoryMarshal.AsBytes(r.AsSpan()), want = MemoryMarshal.AsBytes(expected.AsSpan());
        for (int i = 0; i < x.Length; i++)
            if (!got.Slice(i * size, size).SequenceEqual(want.Slice(i * size, size))) mismatches++;
        Assert.That(mismatches, Is.Zero, $"of {x.Length} inputs");
    }

    [Test]
    public void Float32SubnormalsAndZerosGetTheIeeeSquareRoot()
    {
        var sqrt = Export<SqrtF>("vmsSqrt");
        var x = new float[(1 << 23) + 1];
        for (int i = 0; i < 1 << 23; i++) x[i] = BitConverter.Int32BitsToSingle(i);   // +0 and every positive subnormal
        x[^1] = -0f;
        var r = new float[x.Length];
        sqrt(x.Length, x, r, Mode);
        AssertIeeeSquareRoots(x, r);
        Assert.That(float.IsNegative(r[^1]) && r[^1] == 0, Is.True, "√-0 = -0");
    }

    [Test]
    public void Float64SubnormalsAndZerosGetTheIeeeSquareRoot()
    {
        var sqrt = Export<SqrtD>("vmdSqrt");
        var rng = new Random(7);
        var x = new double[1 << 20];
        for (int i = 0; i < x.Length; i++) x[i] = BitConverter.Int64BitsToDouble(rng.NextInt64(1L << 52));
        (x[0], x[1], x[2], x[3]) = (0.0, -0.0, double.Epsilon, BitConverter.Int64BitsToDouble((1L << 52) - 1));
        var r = new double[x.Length];
        sqrt(x.Length, x, r, Mode);
        AssertIeeeSquareRoots(x, r);
    }
}
