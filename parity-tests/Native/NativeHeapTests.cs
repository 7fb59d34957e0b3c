using System.Runtime.InteropServices;
using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests.Native;

/// <summary>
/// The malloc settings the tool gives glibc (<see cref="NativeHeap"/>): which user settings make it stand back, that
/// blocks as large as a training step's (activations, oneDNN's backward-weights scratch) come from the heap (where a
/// freed one is reused, not given its own mapping that the next step faults in afresh), and what <c>info</c> reports
/// (the trim threshold is applied by the same checked <c>mallopt</c> calls; its effect is a speed, measured in
/// <c>bench/NOTES.md</c>).
/// </summary>
[TestFixture, Category("Native")]
public sealed class NativeHeapTests
{
    [Test]
    public void AnyMallocSettingOfTheUserIsFoundAndNothingElse()
    {
        static IReadOnlyList<string> With(params (string Name, string Value)[] env) =>
            NativeHeap.UserSettings(n => env.FirstOrDefault(e => e.Name == n).Value);

        Assert.That(With(), Is.Empty);
        Assert.That(With(("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F:glibc.pthread.rseq=0")), Is.Empty, "tunables of other glibc parts are not malloc settings");
        Assert.That(With(("MALLOC_TRIM_THRESHOLD_", "")), Is.Empty, "an empty variable is unset");
        Assert.That(With(("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F:glibc.malloc.trim_threshold=1048576")),
            Is.EqualTo(new[] { "glibc.malloc.trim_threshold=1048576" }));
        foreach (var name in NativeHeap.MallocVariables)
            Assert.That(With((name, "65536")), Is.EqualTo(new[] { $"{name}=65536" }), name);
    }

    [TestCase(24)] // above glibc's starting mmap threshold (128 KiB) by far
    [TestCase(48)] // above the largest threshold glibc accepts (32 MiB), as oneDNN's backward-weights blocks (36–72 MiB)
    public void A_block_as_large_as_a_training_steps_comes_from_the_heap(int mib)
    {
        NativeLoader.EnsureLoaded();
        var user = NativeHeap.UserSettings(Environment.GetEnvironmentVariable);
        if (user.Count > 0)
        {
            // This test process runs with the user's malloc settings, which the tool leaves as they are.
            Assert.That(NativeHeap.Description, Is.EqualTo(string.Join(", ", user) + " (set by the user)"));
            return;
        }
        Assert.That(NativeHeap.Description, Does.EndWith("(the tool's default)"));
        // Below 64 MiB, the largest heap of a thread's own arena (this test may run on any thread).
        int size = mib << 20;
        var before = MallInfo();
        var block = Marshal.AllocHGlobal(size); // malloc
        try
        {
            var held = MallInfo();
            Assert.That(held.hblkhd - before.hblkhd, Is.LessThan((nuint)size), "the block was given its own mapping");
        }
        finally
        {
            Marshal.FreeHGlobal(block);
        }
    }

    [Test]
    public void Info_reports_the_tools_settings_and_stands_back_for_the_users()
    {
        var own = Tool.Run(TempDir.New("heap"), ["info"]);
        Assert.That(own.ExitCode, Is.EqualTo(0), own.ToString());
        Assert.That(own.Stdout, Does.Contain($"malloc: mmap_max={NativeHeap.MmapMax} (every block from the heap), trim_threshold={NativeHeap.TrimThreshold >> 20} MiB (the tool's default)"));

        var users = Tool.Run(TempDir.New("heap"), ["info", "--json"], new() { ["MALLOC_TRIM_THRESHOLD_"] = "131072" });
        Assert.That(users.ExitCode, Is.EqualTo(0), users.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(users.Stdout);
        Assert.That(doc.RootElement.GetProperty("malloc").GetString(), Is.EqualTo("MALLOC_TRIM_THRESHOLD_=131072 (set by the user)"));
    }

    /// <summary>glibc's <c>struct mallinfo2</c> (all arenas): every field a <c>size_t</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallInfo();
}
