using NUnit.Framework;
using ResnetMnist.Native;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests.Native;

/// <summary>
/// The square root the fused Adam step computes in registers (<see cref="SqrtLikeMkl"/>) against MKL's, the one
/// libtorch's <c>sqrt</c> runs, where the tests run (this CPU, and MKL's code path under the kernel set of the run: CI
/// runs this fixture under each). The form chosen from the probe set must give MKL's result bit for bit on every
/// mantissa of ten binary exponents, on 16 Mi random floats and on the special values; a form the probe turned down must differ from MKL somewhere.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class SqrtLikeMklTests
{
    [OneTimeSetUp]
    public void Load() => NativeLoader.EnsureLoaded();

    /// <summary>
    /// Binary exponents (biased) whose every mantissa is compared: both ends of the normal range, both parities (the
    /// reciprocal-square-root estimate depends on the mantissa and the exponent's parity), around 1 and where Adam's
    /// second moments live (2⁻⁴⁰–2⁻¹⁰). The whole range, all 2.1 G non-negative floats, was compared once the same
    /// way (0 differences, 72 s); this selection keeps the fixture to seconds under each kernel set.
    /// </summary>
    static readonly int[] WholeExponents = [1, 2, 87, 88, 107, 108, 126, 127, 253, 254];

    [Test]
    public void The_chosen_float32_form_is_MKLs_square_root_on_every_mantissa_of_ten_exponents_and_16_Mi_random_floats()
    {
        var form = SqrtLikeMkl.FormFor<float>();
        TestContext.Out.WriteLine($"float32 form: {form}, kernel set {KernelSet.Current}");
        if (form == SqrtForm.Mkl) { AssertEachCandidateDiffersFromMkl<float>(); return; }
        var x = new float[1 << 23];
        var mkl = new float[x.Length];
        var mine = new float[x.Length];
        void Compare(string what)
        {
            SqrtLikeMkl.Mkl<float>(x, mkl);
            SqrtLikeMkl.Compute<float>(form, x, mine);
            long at = SqrtLikeMkl.FirstDifference<float>(mkl, mine);
            Assert.That(at, Is.EqualTo(-1L), at < 0 ? "" : $"{form}, {what}: √{x[at]:R} (bits 0x{BitConverter.SingleToInt32Bits(x[at]):X8}) is {mine[at]:R}, MKL's {mkl[at]:R}");
        }
        foreach (int e in WholeExponents)
        {
            for (int m = 0; m < x.Length; m++) x[m] = BitConverter.Int32BitsToSingle(e << 23 | m);
            Compare($"exponent {e}");
        }
        var rng = new Random(5);
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < x.Length; i++) x[i] = BitConverter.Int32BitsToSingle(rng.Next(0x00800000, 0x7F7FF001));
            Compare($"random normal floats, round {round}");
        }
    }

    [Test]
    public void The_chosen_form_matches_MKL_on_special_values_in_vector_and_scalar_code()
    {
        // Negative, infinite, NaN, ±0, subnormal and the largest floats mixed into vectors of ordinary values, so that
        // each vector position meets each kind (the lanes MKL serves off its fast path).
        float[] special = [-1f, -0f, 0f, float.Epsilon, 1e-40f, float.PositiveInfinity, float.NegativeInfinity, float.NaN,
            -float.NaN, float.MaxValue, BitConverter.Int32BitsToSingle(0x7F7FF000), BitConverter.Int32BitsToSingle(0x7F7FF001),
            -float.MaxValue, -1e-40f, 1.17549435e-38f, 2.5f];
        var x = new float[special.Length * 17];
        for (int i = 0; i < x.Length; i++) x[i] = i % 17 == 0 ? special[i / 17] : 1f + i;
        var form = SqrtLikeMkl.FormFor<float>();
        var mkl = new float[x.Length];
        var mine = new float[x.Length];
        SqrtLikeMkl.Mkl<float>(x, mkl);
        foreach (var scalar in new[] { false, true })
        {
            SqrtLikeMkl.Compute<float>(form, x, mine, scalar);
            for (int i = 0; i < x.Length; i++)
                Assert.That(BitConverter.SingleToInt32Bits(mine[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(mkl[i])),
                    $"{form} ({(scalar ? "scalar" : "vector")} code), √{x[i]:R} (bits 0x{BitConverter.SingleToInt32Bits(x[i]):X8})");
        }
    }

    [Test]
    public void The_chosen_float64_form_is_MKLs_square_root_on_16_Mi_random_doubles()
    {
        var form = SqrtLikeMkl.FormFor<double>();
        TestContext.Out.WriteLine($"float64 form: {form}, kernel set {KernelSet.Current}");
        if (form == SqrtForm.Mkl) { AssertEachCandidateDiffersFromMkl<double>(); return; }
        var rng = new Random(11);
        var x = new double[1 << 24];
        for (int i = 0; i < x.Length; i++) x[i] = BitConverter.Int64BitsToDouble(rng.NextInt64(0x7FF0000000000001L));
        var mkl = new double[x.Length];
        var mine = new double[x.Length];
        SqrtLikeMkl.Mkl<double>(x, mkl);
        SqrtLikeMkl.Compute<double>(form, x, mine);
        Assert.That(SqrtLikeMkl.FirstDifference<double>(mkl, mine), Is.EqualTo(-1L), $"{form}: the first of 16 Mi doubles whose square root differs from MKL's");
    }

    /// <summary>Where MKL's own function is used, each in-register form differs from it on some probe input (checked here
    /// element by element, not through the probe's own comparison).</summary>
    static void AssertEachCandidateDiffersFromMkl<T>() where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int n = SqrtLikeMkl.ProbePerExponent<T>();
        foreach (var candidate in SqrtLikeMkl.Candidates<T>())
        {
            bool differs = false;
            for (int e = 0; e < SqrtLikeMkl.ProbeExponents<T>() && !differs; e++)
            {
                T[] x = new T[n], mkl = new T[n], vector = new T[n], scalar = new T[n];
                SqrtLikeMkl.ProbeInputs<T>(e, x);
                SqrtLikeMkl.Mkl<T>(x, mkl);
                SqrtLikeMkl.Compute<T>(candidate, x, vector);
                SqrtLikeMkl.Compute<T>(candidate, x, scalar, scalar: true);
                for (int i = 0; i < n && !differs; i++) differs = !mkl[i].Equals(vector[i]) || !mkl[i].Equals(scalar[i]);
            }
            Assert.That(differs, Is.True, $"{candidate} was turned down for {typeof(T).Name} but matches MKL on every probe input");
        }
    }
}
