using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ResnetMnist.Core;

/// <summary>
/// The few POSIX calls that .NET's file API does not offer and that safe reading and writing need: <c>stat</c> and
/// <c>lstat</c> with the file type (.NET reports FIFOs and devices as ordinary files), <c>open</c> with
/// <c>O_NONBLOCK</c> (opening a FIFO for reading otherwise waits for a writer, forever), <c>fstat</c> on the opened
/// handle (so that what was checked is what is read), and <c>flock</c>. Linux only; elsewhere callers use .NET's API.
/// </summary>
internal static class PosixFile
{
    /// <summary>What a path names.</summary>
    public enum Type { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Link, Other }

    /// <summary>Whether the calls here are available (Linux, x64 or arm64).</summary>
    public static bool Available => OperatingSystem.IsLinux();

    /// <summary>The type and size (bytes) of <paramref name="path"/>; <paramref name="followLinks"/>: <c>stat</c>, else <c>lstat</c>.</summary>
    public static (Type Type, long Size) Stat(string path, bool followLinks)
    {
        var buffer = new byte[StatusBytes];
        int rc = followLinks ? SystemNativeStat(path, buffer) : SystemNativeLStat(path, buffer);
        return rc != 0 ? (Type.Missing, 0) : Decode(buffer);
    }

    /// <summary>The type and size (bytes) of an open handle (<c>fstat</c>).</summary>
    public static (Type Type, long Size) FStat(SafeFileHandle handle)
    {
        var buffer = new byte[StatusBytes];
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (SystemNativeFStat(handle.DangerousGetHandle(), buffer) != 0) return (Type.Missing, 0);
        }
        finally { if (added) handle.DangerousRelease(); }
        return Decode(buffer);
    }

    /// <summary>Words for a type in messages: "a FIFO (named pipe)", "a character device", ...</summary>
    public static string Describe(Type type) => type switch
    {
        Type.Regular => "a regular file",
        Type.Directory => "a directory",
        Type.Fifo => "a FIFO (named pipe)",
        Type.CharDevice => "a character device",
        Type.BlockDevice => "a block device",
        Type.Socket => "a socket",
        Type.Link => "a symbolic link",
        Type.Missing => "missing",
        _ => "not a regular file",
    };

    // .NET's own stat wrapper (libSystem.Native, shipped with every runtime): FileStatus { int Flags; int Mode;
    // uint Uid; uint Gid; long Size; ... }. 512 bytes is more than the structure needs.
    const int StatusBytes = 512;

    static (Type, long) Decode(byte[] status)
    {
        int mode = BitConverter.ToInt32(status, 4);
        long size = BitConverter.ToInt64(status, 16);
        var type = (mode & 0xF000) switch
        {
            0x8000 => Type.Regular,
            0x4000 => Type.Directory,
            0x1000 => Type.Fifo,
            0x2000 => Type.CharDevice,
            0x6000 => Type.BlockDevice,
            0xC000 => Type.Socket,
            0xA000 => Type.Link,
            _ => Type.Other,
        };
        return (type, size);
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    static extern int SystemNativeStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] status);

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_LStat")]
    static extern int SystemNativeLStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] status);

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat")]
    static extern int SystemNativeFStat(IntPtr fd, byte[] status);

    // Linux open(2) flags (the same on x64 and arm64 except O_NOFOLLOW).
    public const int ReadOnly = 0x0, ReadWrite = 0x2, Create = 0x40, Exclusive = 0x80, NonBlocking = 0x800, CloseOnExec = 0x80000;
    public static int NoFollow => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    /// <summary><c>open(2)</c>; on failure an invalid handle and the <c>errno</c>.</summary>
    public static SafeFileHandle Open(string path, int flags, out int errno, int mode = 0x1A4 /* 0644 */)
    {
        int fd = open(path, flags | CloseOnExec, mode);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary><c>flock(fd, LOCK_EX | LOCK_NB)</c>: true when this process now holds the exclusive lock.</summary>
    public static bool TryLockExclusive(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return flock((int)handle.DangerousGetHandle(), 2 | 4) == 0;
        }
        finally { if (added) handle.DangerousRelease(); }
    }

    /// <summary>The text of an <c>errno</c> ("Permission denied").</summary>
    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>errno values that mean "cannot write here": EACCES, EPERM, EROFS.</summary>
    public static bool IsNotWritable(int errno) => errno is 13 or 1 or 30;

    [DllImport("libc", SetLastError = true)]
    static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    static extern int flock(int fd, int operation);
}
