using System.Text.RegularExpressions;

namespace ResnetMnist.Core;

/// <summary>
/// The one way the tool writes a file. The bytes go to a temp file in the target's folder, created exclusively
/// (<c>O_CREAT | O_EXCL</c>, which never follows a symbolic link, under a random name <c>.NAME.PID.RANDOM.tmp</c>),
/// are flushed to disk, and the temp file is renamed over the target: a crash, a <c>kill -9</c> or a full disk never
/// leaves a half-written file in place, and a link planted at the target or at a predictable temp name is replaced
/// or ignored, never written through. On any failure the temp file is removed and the previous file stays; a temp
/// file left by a killed process is removed by <see cref="RemoveStaleTemps"/> when its folder is next opened.
/// </summary>
public static partial class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, f => f.Write(copy));
    }

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Writes through <paramref name="write"/> straight into the temp file (nothing held in memory: a checkpoint is
    /// 45–90 MB), then flushes it to disk and renames it over <paramref name="path"/>. If anything throws, the temp
    /// file is removed and the previous file stays.
    /// </summary>
    public static void Write(string path, Action<Stream> write) => Publish(path, f => { write(f); return true; }, replace: true);

    /// <summary>
    /// As <see cref="Write"/>, but the file replaces <paramref name="path"/> only when <paramref name="write"/> returns
    /// true (a download whose hash was refused is dropped with its temp file); returns that value.
    /// </summary>
    public static bool WriteIf(string path, Func<Stream, bool> write) => Publish(path, write, replace: true);

    /// <summary>
    /// As <see cref="WriteAllText"/>, but never replaces an existing file (or link): the finished temp file is
    /// hard-linked to <paramref name="path"/>, which fails when anything is there. Returns false then (nothing
    /// changed, the temp file removed); true when the file was written.
    /// </summary>
    public static bool CreateNewText(string path, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return Publish(path, f => { f.Write(bytes); return true; }, replace: false);
    }

    static bool Publish(string path, Func<Stream, bool> write, bool replace)
    {
        var tmp = TempName(path);
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                if (!write(f))
                {
                    f.Dispose();
                    TryDelete(tmp);
                    return false;
                }
                f.Flush(flushToDisk: true);
            }
            if (replace) File.Move(tmp, path, overwrite: true);
            else if (OperatingSystem.IsWindows()) File.Move(tmp, path, overwrite: false);
            else if (link(tmp, path) != 0)
            {
                int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                if (errno == 17) // EEXIST: something is already at path; it stays as it was
                {
                    TryDelete(tmp);
                    return false;
                }
                throw new IOException(System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno));
            }
        }
        catch (Exception e)
        {
            TryDelete(tmp);
            if (e is IOException or UnauthorizedAccessException)
                throw new IOException($"{path}: could not write ({e.Message}); the previous file, if any, is unchanged", e);
            throw;
        }
        if (!replace) TryDelete(tmp);
        return true;
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
            else Write(path, f => { using var from = InputFiles.OpenRead(source, "a file to copy", long.MaxValue, m => new IOException($"{source}: {m}")); from.CopyTo(f); });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new IOException($"{path}: could not write ({e.Message}); the previous file, if any, is unchanged", e);
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> (read with <see cref="InputFiles"/>' checks) to
    /// <paramref name="path"/> through <see cref="Write"/>.
    /// </summary>
    public static void Copy(string source, string path, long maxBytes)
    {
        using var from = InputFiles.OpenRead(source, "a file to copy", maxBytes, m => new IOException($"{source}: {m}"));
        Write(path, f => from.CopyTo(f, 1 << 16));
    }

    /// <summary>
    /// Opens a file this class just wrote for appending (the one file that grows in place: <c>steps.csv</c>): never
    /// through a symbolic link (<c>O_NOFOLLOW</c>) and only when it is a regular file.
    /// </summary>
    public static FileStream OpenAppend(string path)
    {
        if (!ResnetMnist.Core.PosixFile.Available) return new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        const int writeOnly = 0x1, append = 0x400;
        var handle = ResnetMnist.Core.PosixFile.Open(path, writeOnly | append | ResnetMnist.Core.PosixFile.NoFollow | ResnetMnist.Core.PosixFile.NonBlocking, out int errno);
        if (handle.IsInvalid) throw new IOException($"{path}: cannot be opened for appending ({ResnetMnist.Core.PosixFile.ErrorText(errno)})");
        if (ResnetMnist.Core.PosixFile.FStat(handle).Type != ResnetMnist.Core.PosixFile.Type.Regular)
        {
            handle.Dispose();
            throw new IOException($"{path}: is not a regular file; it was replaced while the run wrote it");
        }
        var stream = new FileStream(handle, FileAccess.Write, 1);
        stream.Seek(0, SeekOrigin.End);
        return stream;
    }

    /// <summary>
    /// Removes the temp files this class leaves when its process is killed mid-write (<c>.NAME.PID.RANDOM.tmp</c>) in
    /// <paramref name="folder"/>. Call it only while holding the folder (its lock): a live writer's temp file matches
    /// the same pattern. Symbolic links of that name are removed, never followed.
    /// </summary>
    public static void RemoveStaleTemps(string folder)
    {
        if (!Directory.Exists(folder) || new DirectoryInfo(folder).LinkTarget is not null) return;
        foreach (var f in Directory.EnumerateFileSystemEntries(folder, ".*.tmp"))
            if (TempPattern().IsMatch(Path.GetFileName(f)) && !Directory.Exists(f))
                TryDelete(f);
    }

    [GeneratedRegex(@"^\..+\.[0-9]+\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TempPattern();

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int link(string oldpath, string newpath);

    static string TempName(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    static void TryDelete(string p) { try { File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
}
