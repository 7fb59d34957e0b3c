namespace ResnetMnist.Outputs;

/// <summary>
/// The rules every folder the tool writes into follows (<c>train --out</c>, <c>sweep --out</c>, <c>parity --out</c>,
/// <c>export --out</c>'s folder, <c>init DIR</c>, <c>RUN/tensorboard</c>): never a system or home folder; never a
/// folder of someone else's that already holds files (a folder is the tool's when it carries the tool's marker file);
/// never a symbolic link where the tool creates a folder or file (files are replaced by rename, so a link in a file's
/// place is replaced, not followed). A refusal is a <see cref="RunDirectoryException"/> (exit 2) and changes nothing.
/// </summary>
public static class OutputFolder
{
    /// <summary>Marks a folder made by <c>sweep --out</c>.</summary>
    public const string SweepMarker = ".resnet-mnist-sweep";
    /// <summary>Marks a folder made by <c>parity --out</c>.</summary>
    public const string ParityMarker = ".resnet-mnist-parity";

    static readonly string[] SystemFolders = ["/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
        "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/local", "/usr/share",
        "/var/lib", "/var/tmp"];
    static readonly string[] SystemTrees = ["/proc/", "/sys/", "/dev/", "/boot/", "/etc/", "/usr/bin/", "/usr/lib/", "/usr/sbin/", "/bin/", "/sbin/", "/lib/"];

    /// <summary>
    /// Refuses the file system's root, system folders (and anything under <c>/etc</c>, <c>/proc</c>, <c>/sys</c>,
    /// <c>/dev</c>, <c>/boot</c>, the binary and library trees) and a home folder itself. With
    /// <paramref name="forOneFile"/> (a single file named by the user: <c>export --out</c>, <c>init</c>,
    /// <c>weights import-mlnet --out</c>) the home folder and the temp folders are allowed: a file there is normal.
    /// </summary>
    public static void RefuseSystemFolder(string path, bool forOneFile = false)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (full.Length == 0) full = "/";
        string[] allowed = forOneFile ? ["/tmp", "/var/tmp", "/root"] : [];
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        bool isHome = home.Length > 1 && string.Equals(full, Path.TrimEndingDirectorySeparator(home), StringComparison.Ordinal);
        bool refused = (SystemFolders.Contains(full, StringComparer.Ordinal) && !allowed.Contains(full, StringComparer.Ordinal))
                       || SystemTrees.Any(p => (full + "/").StartsWith(p, StringComparison.Ordinal))
                       || (isHome && !forOneFile);
        if (refused)
            throw new RunDirectoryException(forOneFile
                ? $"{full}: is a system folder; the tool does not write there: pick a folder of your own"
                : $"{full}: is a system or home folder (or inside a system folder), not a folder for the tool's output; pick a folder of its own, e.g. --out runs/my-run");
    }

    /// <summary>
    /// Claims <paramref name="path"/> as a folder the tool fills with its own files: it must be absent, empty, or
    /// carry <paramref name="marker"/> (written by an earlier claim); it is created and the marker written.
    /// </summary>
    /// <param name="what">What the folder is for messages ("a sweep folder").</param>
    /// <param name="option">The option that named it ("--out").</param>
    public static string Claim(string path, string marker, string what, string option)
    {
        path = Path.GetFullPath(path);
        RefuseSystemFolder(path);
        RequireNoLink(path, what, option);
        if (File.Exists(path)) throw new RunDirectoryException($"{path}: is a file, expected {what}; pick another {option}");
        // Another process claiming the same folder at once (the shards of a sweep) may be writing the marker: its temp file does not count.
        if (Directory.Exists(path) && !File.Exists(Path.Combine(path, marker))
            && Directory.EnumerateFileSystemEntries(path).Any(e => !Path.GetFileName(e).StartsWith($".{marker}.", StringComparison.Ordinal)))
            throw new RunDirectoryException($"{path}: is not empty and is not {what} of this tool (no {marker}); nothing in it is changed: pick a new or empty {option}");
        Create(path);
        var markerFile = Path.Combine(path, marker);
        if (!File.Exists(markerFile) || new FileInfo(markerFile).LinkTarget is not null)
            AtomicFile.WriteAllText(markerFile, $"{what} of resnet-mnist: re-runs write their own files here\n");
        return path;
    }

    /// <summary>
    /// A folder inside one the tool owns (<c>checkpoints</c>, <c>tensorboard</c>, <c>reference</c>): refused when a
    /// symbolic link (it would lead the writes out of the folder) or a file is in its place; created when absent.
    /// With <paramref name="removeLinks"/>, symbolic links directly inside it are removed (never followed), for a
    /// folder another program (the reference) writes into by name.
    /// </summary>
    public static string Subfolder(string path, bool removeLinks = false)
    {
        path = Path.GetFullPath(path);
        CheckSubfolder(path);
        Create(path);
        if (removeLinks)
            foreach (var entry in new DirectoryInfo(path).EnumerateFileSystemInfos())
                if (entry.LinkTarget is not null) File.Delete(entry.FullName); // unlink: the link goes, its target stays
        return path;
    }

    /// <summary>The checks of <see cref="Subfolder"/>, changing nothing: call it before slow work so that a refusal comes first.</summary>
    public static void CheckSubfolder(string path)
    {
        RequireNoLink(path, "a folder of the tool's output", "folder");
        if (File.Exists(path)) throw new RunDirectoryException($"{path}: is a file, expected a folder of the tool's output; remove it");
    }

    /// <summary>
    /// The folder for one file the user names (<c>export --out FILE</c>, <c>init DIR</c>): not a system folder, and the
    /// file's own place not a folder. The folder is created when <paramref name="create"/>, else it must exist.
    /// </summary>
    public static string ForFile(string file, string option, bool create)
    {
        var full = CheckForFile(file, option);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
        {
            if (!create) throw new RunDirectoryException($"{option} {file}: folder {dir} does not exist");
            Create(dir);
        }
        return full;
    }

    /// <summary>
    /// The checks of <see cref="ForFile"/> that hold whether or not the folder exists yet, changing nothing: call it
    /// before slow work so that a refusal comes first. Returns the file's full path.
    /// </summary>
    public static string CheckForFile(string file, string option)
    {
        var full = Path.GetFullPath(file);
        var dir = Path.GetDirectoryName(full)!;
        RefuseSystemFolder(dir, forOneFile: true);
        if (Directory.Exists(full)) throw new RunDirectoryException($"{option} {file}: is a folder; give a file name");
        if (File.Exists(dir)) throw new RunDirectoryException($"{dir}: is a file, expected a folder for {option}");
        return full;
    }

    static void RequireNoLink(string path, string what, string option)
    {
        if (new FileInfo(path).LinkTarget is string target)
            throw new RunDirectoryException($"{path}: is a symbolic link (to {target}), expected {what}; the tool writes only inside its own folders: remove the link or pick another {option}");
    }

    static void Create(string path)
    {
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunDirectoryException($"{path}: cannot create the folder ({e.Message})");
        }
    }
}
