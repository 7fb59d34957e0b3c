using System.Runtime.InteropServices;

namespace ResnetMnist.Core;

/// <summary>The C library's heap, where libtorch's CPU tensors live.</summary>
public static class NativeHeap
{
    /// <summary>
    /// Gives the pages of freed native memory back to the system (glibc's <c>malloc_trim(0)</c>), after a burst of
    /// short-lived tensors: glibc keeps freed blocks in its arena, resident, where they stay between live ones.
    /// Takes milliseconds; nothing on other systems or C libraries (musl has no <c>malloc_trim</c>).
    /// </summary>
    public static void Trim()
    {
        if (!OperatingSystem.IsLinux() || _unavailable) return;
        try { _ = malloc_trim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _unavailable = true; }
    }

    static bool _unavailable;

    [DllImport("libc")]
    static extern int malloc_trim(nuint pad);
}
