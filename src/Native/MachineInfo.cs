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

    static string? Read(string file, string what)
    {
        if (!File.Exists(file)) return null;
        try { return InputFiles.ReadAllText(file, what, 16L << 20, m => new IOException(m)); }
        catch (IOException) { return null; }
    }
}
