using System.Globalization;
using System.Text;
using ResnetMnist.Core;

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

    /// <summary>
    /// Opens <paramref name="lockPath"/> (creating it when <paramref name="create"/>) and takes its exclusive
    /// <c>flock</c>; returns null when another process holds it, or when it is absent and not to be created. Never
    /// follows a symbolic link (whose target would be truncated) and never blocks on a FIFO: anything but a regular file
    /// is refused. A folder that cannot be written is reported as such, not as locked.
    /// </summary>
    public static FileStream? TryOpen(string lockPath, bool create)
    {
        if (!PosixFile.Available)
        {
            try
            {
                if (!create && !File.Exists(lockPath)) return null;
                return new FileStream(lockPath, create ? FileMode.OpenOrCreate : FileMode.Open, create ? FileAccess.ReadWrite : FileAccess.Read, FileShare.None);
            }
            catch (UnauthorizedAccessException e) { throw NotWritable(lockPath, e.Message); }
            catch (IOException) { return null; }
        }
        if (new FileInfo(lockPath).LinkTarget is string target)
            throw new RunDirectoryException($"{lockPath}: is a symbolic link (to {target}); the tool writes only inside the run folder: remove the link");
        int flags = (create ? PosixFile.ReadWrite | PosixFile.Create : PosixFile.ReadOnly) | PosixFile.NonBlocking | PosixFile.NoFollow;
        var handle = PosixFile.Open(lockPath, flags, out int errno);
        if (handle.IsInvalid)
        {
            if (errno == 2 && !create) return null;                     // ENOENT: no lock, nothing to probe
            if (errno == 40) throw new RunDirectoryException($"{lockPath}: is a symbolic link; the tool writes only inside the run folder: remove the link");
            if (PosixFile.IsNotWritable(errno)) throw NotWritable(lockPath, PosixFile.ErrorText(errno));
            throw new RunDirectoryException($"{lockPath}: cannot open the run's lock file ({PosixFile.ErrorText(errno)})");
        }
        try
        {
            var (type, _) = PosixFile.FStat(handle);
            if (type != PosixFile.Type.Regular)
                throw new RunDirectoryException($"{lockPath}: is {PosixFile.Describe(type)}, not a regular file; the run's lock must be a file the tool made: remove it");
            if (!PosixFile.TryLockExclusive(handle)) { handle.Dispose(); return null; }
            return new FileStream(handle, create ? FileAccess.ReadWrite : FileAccess.Read, 1);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    static RunDirectoryException NotWritable(string lockPath, string why) =>
        new($"{Path.GetDirectoryName(lockPath)}: the run folder is read-only here ({why}: {lockPath}); make it writable or pick another --out");

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
        var file = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat";
        try { stat = InputFiles.ReadAllText(file, "a process status", 1 << 16, m => new IOException(m)); }
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
        try { return InputFiles.ReadAllText("/proc/sys/kernel/random/boot_id", "the boot id", 1 << 10, m => new IOException(m)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
