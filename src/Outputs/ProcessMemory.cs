using System.Globalization;
using ResnetMnist.Data;

namespace ResnetMnist.Outputs;

/// <summary>This process's memory as Linux reports it in <c>/proc/self/status</c>.</summary>
public static class ProcessMemory
{
    /// <summary>A <c>/proc/self/status</c> memory line (<c>VmHWM</c>: peak resident, <c>VmRSS</c>: resident now; kB
    /// there) in MiB; null where there is no such file or line.</summary>
    public static double? StatusMiB(string key)
    {
        const string file = "/proc/self/status";
        if (!File.Exists(file)) return null;
        foreach (var line in InputFiles.ReadAllText(file, "a process status", 1 << 20, m => new IOException(m)).Split('\n'))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return double.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return null;
    }

    /// <summary>Peak resident memory of the process so far (<c>VmHWM</c>), MiB; null without <c>/proc</c>.</summary>
    public static double? PeakResidentMiB() => StatusMiB("VmHWM");
}
