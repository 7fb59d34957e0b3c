using System.Runtime.InteropServices;

namespace ResnetMnist.Native;

/// <summary>
/// The CPU kernel set libtorch dispatches to: <c>default</c> (no AVX), <c>avx2</c> or <c>avx512</c>. Float32 results
/// (initial weights included: <c>normal_</c> is vectorised) differ in their last bits between kernel sets, so
/// reference data is kept per kernel set and chosen by this value.
/// </summary>
/// <remarks>
/// libtorch chooses its ATen kernels once, from <c>ATEN_CPU_CAPABILITY</c> (<c>default</c>, <c>avx2</c>,
/// <c>avx512</c>) or else from the CPU. Its convolutions (oneDNN) and matrix products (MKL) have dispatchers of their
/// own that ignore that variable; <see cref="ApplyEnvironment"/> caps them at the same level
/// (<c>ONEDNN_MAX_CPU_ISA</c>, <c>MKL_ENABLE_INSTRUCTIONS</c>) when <c>ATEN_CPU_CAPABILITY</c> is set and they are
/// not, so that the whole process computes as it would on a CPU of that level.
/// </remarks>
public static class KernelSet
{
    /// <summary>The kernel-set names, lowest first, as <c>ATEN_CPU_CAPABILITY</c> spells them.</summary>
    public static readonly IReadOnlyList<string> Names = ["default", "avx2", "avx512"];

    /// <summary>oneDNN and MKL limits that correspond to each kernel set (PyTorch's reference data uses the same).</summary>
    public static readonly IReadOnlyDictionary<string, (string OneDnn, string Mkl)> Limits = new Dictionary<string, (string, string)>
    {
        ["default"] = ("SSE41", "SSE4_2"),
        ["avx2"] = ("AVX2", "AVX2"),
        ["avx512"] = ("AVX512_CORE", "AVX512"),
    };

    static string? _current;

    /// <summary>
    /// The kernel set this process's libtorch uses (natives must be loaded): asked of libtorch itself
    /// (<c>at::get_cpu_capability()</c>), else derived the way libtorch derives it.
    /// </summary>
    public static string Current
    {
        get
        {
            NativeLoader.EnsureLoaded();
            return _current ??= FromLibtorch() ?? Derive();
        }
    }

    /// <summary>Maps libtorch's names ("NO AVX", "DEFAULT", "AVX2", "AVX512") to <see cref="Names"/>.</summary>
    public static string? Normalize(string? reported) => reported?.Trim().ToUpperInvariant() switch
    {
        "NO AVX" or "DEFAULT" => "default",
        "AVX2" => "avx2",
        "AVX512" => "avx512",
        _ => null,
    };

    /// <summary>
    /// Called by <see cref="NativeLoader"/> before libtorch loads: when <c>ATEN_CPU_CAPABILITY</c> names a kernel set,
    /// sets the oneDNN and MKL limits that match it (unless they are set already) in the native environment.
    /// </summary>
    internal static void ApplyEnvironment()
    {
        var requested = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY")?.Trim().ToLowerInvariant();
        if (requested is null || !Limits.TryGetValue(requested, out var limits)) return;
        NativeLoader.SetIfUnset("ONEDNN_MAX_CPU_ISA", limits.OneDnn);
        NativeLoader.SetIfUnset("DNNL_MAX_CPU_ISA", limits.OneDnn);
        NativeLoader.SetIfUnset("MKL_ENABLE_INSTRUCTIONS", limits.Mkl);
    }

    /// <summary>
    /// Calls <c>std::string at::get_cpu_capability()</c> in libtorch_cpu (x86-64 System V: the std::string is returned
    /// through a hidden pointer to 32 bytes; its short names fit the small-string buffer, so nothing is allocated).
    /// </summary>
    static unsafe string? FromLibtorch()
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        var fn = NativeLoader.LibtorchExport("_ZN2at18get_cpu_capabilityB5cxx11Ev");
        if (fn == 0) return null;
        var buffer = stackalloc byte[32];
        ((delegate* unmanaged<byte*, void>)fn)(buffer);
        var data = *(byte**)buffer;
        var length = *(ulong*)(buffer + 8);
        if (data == null || length > 64) return null;
        return Normalize(System.Text.Encoding.ASCII.GetString(data, (int)length));
    }

    /// <summary>libtorch's own rule: a valid <c>ATEN_CPU_CAPABILITY</c> wins; else avx512 when the CPU has AVX-512 F/VL/BW/DQ
    /// and FMA, avx2 with AVX2 and FMA, default otherwise.</summary>
    static string Derive()
    {
        var requested = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY")?.Trim().ToLowerInvariant();
        if (requested is not null && Limits.ContainsKey(requested)) return requested;
        string flags = "";
        try
        {
            flags = InputFiles.ReadAllText("/proc/cpuinfo", "the CPU list", 16L << 20, m => new IOException(m)).Split('\n').FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        }
        catch (IOException) { }
        var set = flags.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        if (new[] { "avx512f", "avx512vl", "avx512bw", "avx512dq", "fma" }.All(set.Contains)) return "avx512";
        if (set.Contains("avx2") && set.Contains("fma")) return "avx2";
        return "default";
    }
}
