namespace ResnetMnist.Outputs;

/// <summary>
/// Writes files so that a crash, a kill -9 or a full disk never leaves a half-written file in place: the bytes go
/// to a temp file in the same folder, are flushed to disk, and the temp file is renamed over the target.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var tmp = TempName(path);
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                f.Write(bytes);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new IOException($"{path}: could not write ({e.Message}); the previous file, if any, is unchanged", e);
        }
    }

    /// <summary>
    /// Makes <paramref name="path"/> a second name (hard link) of <paramref name="source"/>, atomically replacing it:
    /// no second copy of the bytes on disk. Safe because every file is replaced by rename, never rewritten in place, so
    /// a later write of <paramref name="source"/> leaves this one as it was. Copies where links are not possible.
    /// </summary>
    public static void LinkOrCopy(string source, string path)
    {
        var tmp = TempName(path);
        try
        {
            if (!OperatingSystem.IsWindows() && link(source, tmp) == 0) File.Move(tmp, path, overwrite: true);
            else
            {
                TryDelete(tmp);
                WriteAllBytes(path, File.ReadAllBytes(source));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new IOException($"{path}: could not write ({e.Message}); the previous file, if any, is unchanged", e);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int link(string oldpath, string newpath);

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Writes through <paramref name="write"/> straight into the temp file (nothing held in memory: a checkpoint is
    /// 45–90 MB), then flushes it to disk and renames it over <paramref name="path"/>. If <paramref name="write"/>
    /// throws, the temp file is removed and the previous file stays.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        var tmp = TempName(path);
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(f);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(tmp);
            if (e is IOException or UnauthorizedAccessException)
                throw new IOException($"{path}: could not write ({e.Message}); the previous file, if any, is unchanged", e);
            throw;
        }
    }

    static string TempName(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    static void TryDelete(string p) { try { File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
}
