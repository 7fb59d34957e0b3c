using System.Diagnostics;
using System.Text.RegularExpressions;
using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests.Native;

/// <summary>
/// How libtorch's pool threads wait (<see cref="NativeLoader.DefaultWaitFor"/>): a short spin where the machine was idle
/// when the tool started, passive where another process was busy, the user's own variables always; and the CPU
/// counters that decide it.
/// </summary>
[TestFixture, Category("Native")]
public sealed class WaitPolicyTests
{
    [Test]
    public void Idle_machines_spin_briefly_and_busy_or_unknown_ones_wait_passively()
    {
        Assert.That(NativeLoader.DefaultWaitFor(0.0), Is.EqualTo(("GOMP_SPINCOUNT", "1000")));
        Assert.That(NativeLoader.DefaultWaitFor(0.49), Is.EqualTo(("GOMP_SPINCOUNT", "1000")));
        Assert.That(NativeLoader.DefaultWaitFor(0.5), Is.EqualTo(("OMP_WAIT_POLICY", "PASSIVE")));
        Assert.That(NativeLoader.DefaultWaitFor(3.0), Is.EqualTo(("OMP_WAIT_POLICY", "PASSIVE")));
        Assert.That(NativeLoader.DefaultWaitFor(null), Is.EqualTo(("OMP_WAIT_POLICY", "PASSIVE")));
    }

    [Test]
    public void Other_processes_time_is_the_machines_busy_time_without_this_ones()
    {
        var before = new CpuTicks(Busy: 1000, Total: 4000, Own: 100);
        // 200 ticks over 2 cores = 1 s; 150 busy, 50 of them ours: others used 100 of 200 ticks = 1 of 2 cores.
        Assert.That(CpuTicks.OthersCores(before, before with { Busy = 1150, Total = 4200, Own = 150 }, cores: 2), Is.EqualTo(1.0));
        Assert.That(CpuTicks.OthersCores(before, before with { Busy = 1050, Total = 4200, Own = 150 }, cores: 2), Is.EqualTo(0.0), "only our own time");
        Assert.That(CpuTicks.OthersCores(before, before with { Busy = 1040, Total = 4200, Own = 150 }, cores: 2), Is.EqualTo(0.0), "counters read a tick apart never go negative");
        Assert.That(CpuTicks.OthersCores(before, before, cores: 2), Is.EqualTo(0.0), "no time passed");
    }

    [Test]
    public void The_counters_see_a_process_spinning_beside_this_one()
    {
        using var spinner = Spin();
        var cores = MachineInfo.OtherProcessesCores(TimeSpan.FromMilliseconds(300));
        Assert.That(cores, Is.Not.Null, "Linux reports /proc/stat and /proc/self/stat");
        // The spinner alone is one core; sampling at 100 ticks/s over 300 ms reads it to within a tick or two.
        Assert.That(cores, Is.GreaterThanOrEqualTo(0.8));
    }

    [Test]
    public void The_tool_waits_passively_beside_a_busy_process_and_reports_why()
    {
        using (Spin())
        {
            var busy = Tool.Run(TempDir.New("wait"), ["info"]);
            Assert.That(busy.ExitCode, Is.EqualTo(0), busy.ToString());
            Assert.That(busy.Stdout, Does.Match(@"waiting threads: OMP_WAIT_POLICY=PASSIVE \(the tool's default: other processes used [0-9.]+ cores at start\)"));
        }
        var user = Tool.Run(TempDir.New("wait"), ["info"], new() { ["GOMP_SPINCOUNT"] = "5" });
        Assert.That(user.Stdout, Does.Contain("waiting threads: GOMP_SPINCOUNT=5 (set by the user)"), user.ToString());

        // Whatever the machine is doing now, the choice follows the load the tool reports.
        var any = Tool.Run(TempDir.New("wait"), ["info"]);
        var m = Regex.Match(any.Stdout, @"waiting threads: (\w+)=(\w+) \(the tool's default: other processes used ([0-9.]+) cores at start\)");
        Assert.That(m.Success, Is.True, any.ToString());
        var load = double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That((m.Groups[1].Value, m.Groups[2].Value), Is.EqualTo(NativeLoader.DefaultWaitFor(load)));
    }

    /// <summary>A process that keeps one core busy until disposed.</summary>
    static Spinner Spin()
    {
        var p = Process.Start(new ProcessStartInfo("sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!;
        // Wait on progress: the spinner has used CPU time (its /proc stat ticks moved) before anyone samples.
        var stat = $"/proc/{p.Id}/stat";
        while (!p.HasExited && (MachineInfo.ProcessTicks(stat) ?? 0) < 2) Thread.Sleep(10);
        return new Spinner(p);
    }

    sealed class Spinner(Process p) : IDisposable
    {
        public void Dispose()
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit();
            p.Dispose();
        }
    }
}
