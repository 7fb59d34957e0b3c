using System.Runtime.InteropServices;

namespace ResnetMnist.Native;

/// <summary>
/// The C library's heap, where libtorch's CPU tensors live: how glibc's <c>malloc</c> keeps freed memory (set once, by
/// <see cref="NativeLoader"/>, before the first tensor exists), and giving freed memory back after a burst.
/// </summary>
/// <remarks>
/// A training step allocates every activation and gradient afresh and frees them at its end. glibc's defaults give a
/// block above its mmap threshold (128 KiB, raised to the largest block freed so far, at most 32 MiB) its own mapping,
/// unmapped when freed, and return the top of the heap to the kernel once more than twice that is free; so each step's
/// tensors were new pages, which the kernel faults in and zeroes one by one (a quarter of the tool's CPU samples were
/// in the kernel at batch 16, <c>bench/NOTES.md</c>). No block gets its own mapping here (<see cref="MmapMax"/>): with
/// two or more intra-op threads, oneDNN's convolution backward-weights asks for three blocks of 36–72 MiB in every
/// step whatever the batch size (above the largest threshold glibc accepts, 32 MiB), ~16,000 fresh pages a step.
/// Freed memory is kept up to <see cref="TrimThreshold"/>, so the next step reuses the same pages.
/// The user's own malloc settings win: any of glibc's malloc tunables in <c>GLIBC_TUNABLES</c>, or the
/// <c>MALLOC_*_</c> variables glibc reads, leave the allocator as the user set it.
/// </remarks>
public static class NativeHeap
{
    /// <summary>How many blocks glibc may give their own mapping (<c>M_MMAP_MAX</c>): none, every block comes from the
    /// heap. (A thread's own arena still maps a block larger than its 64 MiB heap: glibc's fallback.)</summary>
    public const int MmapMax = 0;

    /// <summary>Free memory at the top of the heap kept for reuse before any is returned to the kernel (bytes; 512 MiB).</summary>
    public const long TrimThreshold = 512L << 20;

    /// <summary>The environment variables glibc reads malloc settings from (besides <c>GLIBC_TUNABLES</c>).</summary>
    public static readonly IReadOnlyList<string> MallocVariables =
        ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX"];

    /// <summary>What applies in this process: the tool's settings, the user's, or why none were set.</summary>
    public static string Description { get; private set; } = "not set";

    /// <summary>
    /// The user's malloc settings found in <paramref name="variable"/> (a lookup of environment variables), as
    /// <c>NAME=value</c> items; empty when the user set none.
    /// </summary>
    public static IReadOnlyList<string> UserSettings(Func<string, string?> variable)
    {
        var found = NativeLoader.UserSet(MallocVariables, variable);
        var tunables = variable("GLIBC_TUNABLES") ?? "";
        found.AddRange(tunables.Split(':', StringSplitOptions.RemoveEmptyEntries).Where(t => t.StartsWith("glibc.malloc.", StringComparison.Ordinal)));
        return found;
    }

    /// <summary>Applies the policy unless the user set malloc themselves; records <see cref="Description"/>.</summary>
    internal static void Apply()
    {
        var user = UserSettings(Environment.GetEnvironmentVariable);
        Description = user.Count > 0 ? string.Join(", ", user) + " (set by the user)"
            : !TryMallopt(out var mallopt) ? "the C library's default (not glibc)"
            : mallopt(TrimThresholdParam, (int)TrimThreshold) == 1 && mallopt(MmapMaxParam, MmapMax) == 1
                ? $"mmap_max={MmapMax} (every block from the heap), trim_threshold={TrimThreshold >> 20} MiB (the tool's default)"
                : "the C library's default (mallopt refused the tool's settings)";
    }

    /// <summary>
    /// Gives the pages of freed native memory back to the system (glibc's <c>malloc_trim(0)</c>), after a burst of
    /// short-lived tensors: glibc keeps freed blocks in its arena, resident, where they stay between live ones (and,
    /// under <see cref="TrimThreshold"/>, at the heap's top too). Takes milliseconds; nothing on other C libraries.
    /// </summary>
    public static void Trim()
    {
        Interlocked.Increment(ref _trims);
        if (!OperatingSystem.IsLinux() || _noTrim) return;
        try { _ = malloc_trim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _noTrim = true; }
    }

    static bool _noTrim;
    static long _trims;

    /// <summary>How many times <see cref="Trim"/> was asked in this process (a trim in every training step would hand
    /// back the step's activations, which the next step then faults in afresh).</summary>
    public static long Trims => Interlocked.Read(ref _trims);

    [DllImport("libc")]
    static extern int malloc_trim(nuint pad);

    /// <summary>glibc's <c>mallopt</c> parameter numbers (malloc.h).</summary>
    const int TrimThresholdParam = -1, MmapMaxParam = -4;

    delegate int Mallopt(int param, int value);

    /// <summary>glibc's <c>mallopt</c>, where this process runs on glibc (it alone exports <c>gnu_get_libc_version</c>).</summary>
    static bool TryMallopt(out Mallopt mallopt)
    {
        mallopt = null!;
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc)) return false;
        if (!NativeLibrary.TryGetExport(libc, "gnu_get_libc_version", out _) || !NativeLibrary.TryGetExport(libc, "mallopt", out var fn)) return false;
        mallopt = Marshal.GetDelegateForFunctionPointer<Mallopt>(fn);
        return true;
    }
}
