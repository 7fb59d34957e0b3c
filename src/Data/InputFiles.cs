using System.Runtime.InteropServices;

namespace ResnetMnist.Data;

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
/// Checks made on every input file before it is opened for reading: it exists, is a regular file (a FIFO or a device
/// would block or never end), and is not larger than a stated cap. Reads are bounded by the same cap.
/// </summary>
public static class InputFiles
{
    /// <summary>What kind of filesystem object a path is (symbolic links followed).</summary>
    public enum Kind { Missing, Regular, Directory, Other }

    /// <summary>The kind of <paramref name="path"/>, from <c>stat(2)</c>, without opening it.</summary>
    public static Kind KindOf(string path)
    {
        if (Directory.Exists(path)) return Kind.Directory;
        if (!File.Exists(path)) return Kind.Missing;
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return Kind.Regular;
        // .NET reports FIFOs and devices as ordinary files; ask the runtime's own stat wrapper for the mode bits.
        var buffer = new byte[512];
        if (SystemNativeStat(path, buffer) != 0) return Kind.Missing;
        int mode = BitConverter.ToInt32(buffer, 4);               // FileStatus { int Flags; int Mode; ... }
        return (mode & 0xF000) switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            _ => Kind.Other,
        };
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    static extern int SystemNativeStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] status);

    /// <summary>
    /// Throws <paramref name="fail"/>'s exception unless <paramref name="path"/> is a regular file of at most
    /// <paramref name="maxBytes"/> bytes; returns its length.
    /// </summary>
    /// <param name="what">What the file should be, for messages ("a YAML config file").</param>
    public static long RequireRegularFile(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        switch (KindOf(path))
        {
            case Kind.Missing: throw fail("file not found");
            case Kind.Directory: throw fail($"is a directory; expected {what}");
            case Kind.Other: throw fail($"is not a regular file (a pipe, FIFO or device); expected {what}");
        }
        long length = new FileInfo(path).Length;
        if (length > maxBytes)
            throw fail($"is {Size(length)}, more than the {Size(maxBytes)} allowed for {what}");
        return length;
    }

    /// <summary>Reads a regular file of at most <paramref name="maxBytes"/> (checked first, and again while reading).</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes, Func<string, Exception> fail)
    {
        RequireRegularFile(path, what, maxBytes, fail);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var ms = new MemoryStream();
        CopyCapped(fs, ms, maxBytes, () => fail($"grew past the {Size(maxBytes)} allowed for {what} while being read"));
        return ms.ToArray();
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
