using System.Globalization;
using System.Text;

namespace ResnetMnist.Outputs;

/// <summary>
/// The contents of a run folder's <c>.lock</c>: who holds it, so that a lock left behind by a process that was
/// killed (kill -9, power cut) can be told from a live one. One line, <c>pid=N start=T boot=B</c>: the process id,
/// its start time (field 22 of <c>/proc/PID/stat</c>, clock ticks since boot) and the kernel's boot id. A process
/// counts as alive only when a process with that id runs, started at that time, since that boot, so a reused pid
/// or a reboot does not keep a folder locked. The open file itself is also locked (<c>flock</c>) while the run writes.
/// </summary>
public static class RunLock
{
    /// <summary>The process named in a lock file and whether it still runs.</summary>
    public sealed record Owner(int Pid, bool Alive);

    /// <summary>Reads the lock's owner from <paramref name="lockFile"/>; null when the file is empty (no owner recorded).</summary>
    public static Owner? Holder(FileStream lockFile)
    {
        lockFile.Position = 0;
        var buffer = new byte[256];
        int n = lockFile.Read(buffer);
        var text = Encoding.ASCII.GetString(buffer, 0, n).Trim();
        if (text.Length == 0) return null;
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
        // Older lock files hold only the pid.
        if (!fields.TryGetValue("pid", out var pidText)) pidText = text;
        if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0) return new Owner(0, false);
        if (pid == Environment.ProcessId) return new Owner(pid, false); // this process: a lock it left itself (a previous run of a sweep)
        var start = StartTime(pid);
        bool alive = start is not null
                     && (!fields.TryGetValue("start", out var s) || s == start)
                     && (!fields.TryGetValue("boot", out var b) || b == BootId());
        return new Owner(pid, alive);
    }

    /// <summary>Records this process as the lock's holder.</summary>
    public static void Write(FileStream lockFile)
    {
        lockFile.SetLength(0);
        lockFile.Position = 0;
        lockFile.Write(Encoding.ASCII.GetBytes($"pid={Environment.ProcessId} start={StartTime(Environment.ProcessId) ?? "?"} boot={BootId() ?? "?"}\n"));
        lockFile.Flush(flushToDisk: true);
    }

    /// <summary>Start time of process <paramref name="pid"/> in clock ticks since boot, or null when no such process runs.</summary>
    public static string? StartTime(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        // The command name (field 2) is in parentheses and may hold spaces: fields after it start at the last ')'.
        int close = stat.LastIndexOf(')');
        if (close < 0) return null;
        var rest = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // rest[0] is field 3 (state); field 22 (starttime) is rest[19]. A zombie has exited.
        if (rest.Length < 20 || rest[0] == "Z") return null;
        return rest[19];
    }

    static string? BootId()
    {
        try { return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
