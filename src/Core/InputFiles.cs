namespace ResnetMnist.Core;

/// <summary>
/// Bad input from the user (a file or a value): the message is one line, <c>&lt;where&gt;: &lt;what&gt;; &lt;what is allowed&gt;</c>,
/// and <see cref="ExitCode"/> is what the tool exits with (2 unless said otherwise).
/// </summary>
public class BadInputException(string message, Exception? inner = null, int exitCode = 2) : Exception(message, inner)
{
    /// <summary>The process exit code for this error.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// The one way the tool reads a file (configs, datasets, checkpoints, run records, images, weights): the path may be a
/// symbolic link, which is followed, but what it leads to must be a regular file (a FIFO would block, a device such as
/// <c>/dev/zero</c> never ends, a folder is not a file), no larger than a stated cap. The file is opened with
/// <c>O_NONBLOCK</c> and checked again on the open handle (<c>fstat</c>), so a FIFO swapped in after the first check
/// is refused instead of hanging, and reads stop at the cap even if the file grows meanwhile.
/// </summary>
public static class InputFiles
{
    /// <summary>What kind of filesystem object a path is (symbolic links followed).</summary>
    public enum Kind { Missing, Regular, Directory, Other }

    /// <summary>The kind of <paramref name="path"/>, from <c>stat(2)</c>, without opening it.</summary>
    public static Kind KindOf(string path)
    {
        if (!PosixFile.Available)
            return Directory.Exists(path) ? Kind.Directory : File.Exists(path) ? Kind.Regular : Kind.Missing;
        return PosixFile.Stat(path, followLinks: true).Type switch
        {
            PosixFile.Type.Missing => Kind.Missing,
            PosixFile.Type.Regular => Kind.Regular,
            PosixFile.Type.Directory => Kind.Directory,
            _ => Kind.Other,
        };
    }

    /// <summary>
    /// Throws <paramref name="fail"/>'s exception unless <paramref name="path"/> leads (through symbolic links, if
    /// any) to a regular file of at most <paramref name="maxBytes"/> bytes; returns that file's length.
    /// </summary>
    /// <param name="what">What the file should be, for messages ("a YAML config file").</param>
    public static long RequireRegularFile(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        if (!PosixFile.Available)
        {
            if (Directory.Exists(path)) throw fail($"is a directory; expected {what}");
            if (!File.Exists(path)) throw fail("file not found");
            return Require(PosixFile.Type.Regular, new FileInfo(path).Length, path, what, maxBytes, fail);
        }
        var (type, size) = PosixFile.Stat(path, followLinks: true);
        return Require(type, size, path, what, maxBytes, fail);
    }

    static long Require(PosixFile.Type type, long size, string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        if (type == PosixFile.Type.Missing)
            throw fail(PosixFile.Available && PosixFile.Stat(path, followLinks: false).Type == PosixFile.Type.Link
                ? $"is a symbolic link to {Target(path)}, which does not exist; expected {what}"
                : "file not found");
        if (type != PosixFile.Type.Regular)
        {
            bool link = PosixFile.Available && PosixFile.Stat(path, followLinks: false).Type == PosixFile.Type.Link;
            string kind = type == PosixFile.Type.Directory ? "a directory" : $"not a regular file but {PosixFile.Describe(type)}";
            throw fail(link ? $"is a symbolic link to {Target(path)}, which is {kind}; expected {what}" : $"is {kind}; expected {what}");
        }
        if (size > maxBytes)
            throw fail($"is {Size(size)}, more than the {Size(maxBytes)} allowed for {what}");
        return size;
    }

    /// <summary>Where a symbolic link leads, for messages (its final target when that resolves, else its own text).</summary>
    static string Target(string path)
    {
        try { return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? new FileInfo(path).LinkTarget ?? "?"; }
        catch (IOException) { return new FileInfo(path).LinkTarget ?? "?"; }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading after the checks of <see cref="RequireRegularFile"/>, repeated on the
    /// open handle; the stream refuses to read past <paramref name="maxBytes"/>. Seekable, as a file is.
    /// </summary>
    public static Stream OpenRead(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        RequireRegularFile(path, what, maxBytes, fail);
        FileStream file;
        if (PosixFile.Available)
        {
            var handle = PosixFile.Open(path, PosixFile.ReadOnly | PosixFile.NonBlocking, out int errno);
            if (handle.IsInvalid) throw fail($"cannot be opened ({PosixFile.ErrorText(errno)})");
            try
            {
                var (type, size) = PosixFile.FStat(handle);
                Require(type, size, path, what, maxBytes, fail); // what was opened, not what the path named a moment ago
                file = new FileStream(handle, FileAccess.Read, 1 << 16);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
        else
        {
            try { file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw fail($"cannot be opened ({e.Message})"); }
        }
        return new CappedReadStream(file, maxBytes, () => fail($"grew past the {Size(maxBytes)} allowed for {what} while being read"));
    }

    /// <summary>Reads a regular file of at most <paramref name="maxBytes"/> (checked first, and again while reading).</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        using var fs = OpenRead(path, what, maxBytes, fail);
        using var ms = new MemoryStream();
        try { fs.CopyTo(ms, 1 << 16); }
        catch (IOException e) { throw fail($"cannot be read ({e.Message})"); }
        return ms.ToArray();
    }

    /// <summary><see cref="ReadAllBytes"/> as UTF-8 text (a byte-order mark is dropped).</summary>
    public static string ReadAllText(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        var bytes = ReadAllBytes(path, what, maxBytes, fail);
        return new System.Text.UTF8Encoding(false).GetString(bytes).TrimStart('\uFEFF');
    }

    /// <summary>A file stream that throws once more than a cap has been read.</summary>
    sealed class CappedReadStream(FileStream inner, long maxBytes, Func<Exception> tooLong) : Stream
    {
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            if (inner.Position > maxBytes) throw tooLong();
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    /// <summary>Copies at most <paramref name="maxBytes"/>; throws <paramref name="tooLong"/>'s exception when there is more.</summary>
    public static long CopyCapped(Stream from, Stream to, long maxBytes, Func<Exception> tooLong)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        while (true)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, maxBytes - total + 1));
            if (n == 0) return total;
            total += n;
            if (total > maxBytes) throw tooLong();
            to.Write(buffer, 0, n);
        }
    }

    /// <summary>A byte count for messages: "1.49 GiB", "64 MiB", "17 bytes".</summary>
    public static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB"),
        >= 1L << 20 => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.##} MiB"),
        >= 1L << 10 => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):0.##} KiB"),
        _ => $"{bytes} bytes",
    };
}
