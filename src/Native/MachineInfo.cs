using System.Globalization;

namespace ResnetMnist.Native;

/// <summary>The machine and process a run used, as Linux reports them (<c>/proc</c>); null where a file or line is absent.</summary>
public static class MachineInfo
{
    /// <summary>The CPU's <c>model name</c> line of <c>/proc/cpuinfo</c> (the first core's).</summary>
    public static string? CpuModel()
    {
        var text = Read("/proc/cpuinfo", "the CPU list");
        var line = text?.Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? null : line[(line.IndexOf(':') + 1)..].Trim();
    }

    /// <summary>A <c>/proc/self/status</c> memory line (kB) in MiB, e.g. <c>VmHWM</c> (peak resident memory) or <c>VmRSS</c>.</summary>
    public static double? ProcStatusMiB(string key)
    {
        foreach (var line in Read("/proc/self/status", "a process status")?.Split('\n') ?? [])
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return double.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return null;
    }

    /// <summary>
    /// The machine's CPU time counters now (<c>/proc/stat</c>'s all-core line and <c>/proc/self/stat</c>), in clock
    /// ticks; null where Linux does not report them.
    /// </summary>
    public static CpuTicks? ReadCpuTicks()
    {
        var all = Read("/proc/stat", "the CPU counters")?.Split('\n').FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
        var own = ProcessTicks("/proc/self/stat");
        if (all is null || own is null) return null;
        var t = all.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(Ticks).ToArray();
        if (t.Length < 8) return null;
        long idle = t[3] + t[4];
        long busy = t[0] + t[1] + t[2] + t[5] + t[6] + t[7]; // user nice system irq softirq steal (guest is inside user)
        return new CpuTicks(busy, busy + idle, own.Value);
    }

    /// <summary>
    /// A process's CPU time (user + system, clock ticks) from its <c>stat</c> file (<c>/proc/self/stat</c>,
    /// <c>/proc/&lt;pid&gt;/stat</c>); null where it cannot be read.
    /// </summary>
    public static long? ProcessTicks(string statFile)
    {
        var stat = Read(statFile, "a process's CPU counters");
        if (stat is null || stat.LastIndexOf(')') < 0) return null;
        // after the command name: state, ppid, ..., utime (the 12th), stime (the 13th)
        var f = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return f.Length < 13 ? null : Ticks(f[11]) + Ticks(f[12]);
    }

    /// <summary>
    /// How many cores' worth of CPU time other processes used over <paramref name="window"/> (this process's own
    /// time taken out), sampled now; null where Linux does not report it.
    /// </summary>
    public static double? OtherProcessesCores(TimeSpan window)
    {
        var before = ReadCpuTicks();
        if (before is null) return null;
        Thread.Sleep(window);
        var after = ReadCpuTicks();
        return after is null ? null : CpuTicks.OthersCores(before.Value, after.Value, Environment.ProcessorCount);
    }

    static long Ticks(string field) => long.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;

    static string? Read(string file, string what)
    {
        if (!File.Exists(file)) return null;
        try { return InputFiles.ReadAllText(file, what, 16L << 20, m => new IOException(m)); }
        catch (IOException) { return null; }
    }
}

/// <summary>CPU time counters in clock ticks: all cores' busy and total time, and this process's own busy time.</summary>
public readonly record struct CpuTicks(long Busy, long Total, long Own)
{
    /// <summary>Cores' worth of CPU time other processes used between two readings: (busy − own) / total × cores.</summary>
    public static double OthersCores(CpuTicks before, CpuTicks after, int cores)
    {
        long total = after.Total - before.Total;
        long others = after.Busy - before.Busy - (after.Own - before.Own);
        return total <= 0 ? 0 : Math.Max(0, others) * (double)cores / total;
    }
}
