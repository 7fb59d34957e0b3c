using ResnetMnist.Core;

namespace ResnetMnist.Tool;

/// <summary>
/// The tool's normal output lines (results, notes, progress), as <see cref="ErrorHandling"/> is its error line: each
/// line goes through <see cref="Printable.Escape"/>, because paths, config values, tensor names, recorded metadata and a
/// child process's output all end up in them, and none of it may reach the terminal as an escape sequence or a line
/// of its own. Text meant as several lines is written line by line, each escaped.
/// </summary>
static class Terminal
{
    /// <summary>
    /// Cap on one output line, in characters before escaping: far above any real line (a report listing every
    /// tensor of a resnet152 stays under it) and far below what a hostile file could make of it.
    /// </summary>
    public const int MaxLineChars = 1 << 16;

    /// <summary><paramref name="line"/> as it is shown: control characters escaped, capped at <see cref="MaxLineChars"/>.</summary>
    public static string Safe(string? line) => Printable.Escape(line, MaxLineChars);

    /// <summary>
    /// The width Spectre lays <c>--help</c> and tables out to: <c>COLUMNS</c> when it is set to a positive number; else,
    /// on a terminal, the terminal's width (Spectre's own detection); else (output to a file or a pipe) wide enough that
    /// no line is wrapped (Spectre's fallback, 80 columns, would break a long command path in the middle of an example).
    /// </summary>
    public static void SetWidth()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0)
            Spectre.Console.AnsiConsole.Profile.Width = columns;
        else if (Console.IsOutputRedirected)
            Spectre.Console.AnsiConsole.Profile.Width = UnwrappedWidth;
    }

    /// <summary>The layout width when output is not a terminal and <c>COLUMNS</c> is unset (characters).</summary>
    const int UnwrappedWidth = 4096;

    /// <summary>One line on standard output.</summary>
    public static void Out(string line) => Console.WriteLine(Safe(line));

    /// <summary>One line on standard error (a note or a warning, never an error: those go through <see cref="ErrorHandling"/>).</summary>
    public static void Err(string line) => Console.Error.WriteLine(Safe(line));

    /// <summary>Text of several lines on standard output, each line escaped on its own.</summary>
    public static void OutLines(string text)
    {
        foreach (var line in text.TrimEnd('\n').Split('\n')) Out(line.TrimEnd('\r'));
    }
}
