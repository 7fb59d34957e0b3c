namespace ResnetMnist.Core;

/// <summary>
/// The command that runs this tool, as <c>--help</c> and every printed suggestion ("resume with: …", "run … data
/// fetch") spell it, so that a suggestion can be pasted as it stands. The two ways the tool is installed give two
/// commands: <c>dotnet tool install -g</c> and a local tool manifest run it as <c>dotnet resnet-mnist</c>; a
/// <c>--tool-path</c> install gives an executable, <c>dotnet-resnet-mnist</c> (the package's
/// <c>ToolCommandName</c>; the global install's shim has the same name). Which one ran is read from the process:
/// the apphost's own file (<see cref="Environment.ProcessPath"/>) and how the shell named it (<c>argv[0]</c>).
/// </summary>
public static class ToolCommand
{
    /// <summary>The command of a global or local tool, and of anything that hosts the library (<c>dotnet exec</c>, tests).</summary>
    public const string Dotnet = "dotnet resnet-mnist";

    /// <summary>The tool's executables: the installed one (<c>ToolCommandName</c>) and the build output's apphost (<c>AssemblyName</c>).</summary>
    public static readonly IReadOnlyList<string> Executables = ["dotnet-resnet-mnist", "resnet-mnist"];

    static readonly Lazy<string> name = new(() => Of(Environment.ProcessPath, Argv0(), Environment.GetEnvironmentVariable("PATH")));

    /// <summary>The command of this process (<see cref="Of"/> of its own process path, argv[0] and PATH).</summary>
    public static string Name => name.Value;

    /// <summary>
    /// The command of a process: <see cref="Dotnet"/> unless the process is one of the tool's
    /// <see cref="Executables"/> (the <c>dotnet</c> muxer, <c>dotnet exec</c> and any other host give
    /// <see cref="Dotnet"/>); for an executable, the name it was started by when the shell found it on <c>PATH</c>
    /// (argv[0] without a folder, or in a <c>PATH</c> folder), else the path it was started by
    /// (<c>tools/dotnet-resnet-mnist</c>), which works from the folder it was started in; shell-quoted when it needs it.
    /// The name comes from argv[0], not from the file: a shim that links to the package's executable keeps its own name.
    /// </summary>
    /// <param name="processPath">The running executable's path (<see cref="Environment.ProcessPath"/>); null when unknown.</param>
    /// <param name="argv0">The process's <c>argv[0]</c>, as the shell passed it; null when unknown.</param>
    /// <param name="path">The <c>PATH</c> variable (folders separated by <c>:</c>); null when unset.</param>
    public static string Of(string? processPath, string? argv0, string? path)
    {
        var exe = Path.GetFileName(processPath);
        if (exe is null || !Executables.Contains(exe, StringComparer.Ordinal)) return Dotnet;
        if (string.IsNullOrEmpty(argv0)) return exe;
        if (!argv0.Contains('/')) return Quoted(argv0);
        var folder = Folder(Path.GetDirectoryName(Path.GetFullPath(argv0)));
        bool onPath = (path ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(p => Path.IsPathFullyQualified(p) && Folder(p) == folder);
        return Quoted(onPath ? Path.GetFileName(argv0) : argv0);
    }

    static string Folder(string? dir) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(string.IsNullOrEmpty(dir) ? "/" : dir));

    /// <summary><paramref name="s"/> as one shell word: as it is when it holds only safe characters, else in single quotes.</summary>
    static string Quoted(string s) =>
        s.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ',' or ':' or '@' or '%' or '=')
            ? s
            : "'" + s.Replace("'", "'\\''") + "'";

    /// <summary>This process's <c>argv[0]</c> from <c>/proc/self/cmdline</c> (the apphost's, not the managed entry's); null where unreadable.</summary>
    static string? Argv0()
    {
        try
        {
            var bytes = File.ReadAllBytes("/proc/self/cmdline");
            int end = Array.IndexOf(bytes, (byte)0);
            return System.Text.Encoding.UTF8.GetString(bytes, 0, end < 0 ? bytes.Length : end);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException) { return null; }
    }
}
