using System.Globalization;
using System.Text;

namespace ResnetMnist.Core;

/// <summary>
/// The one way text that comes from a file, a checkpoint or a child process reaches the terminal: control characters
/// (C0, DEL, C1), Unicode line/paragraph separators and bidirectional overrides are shown escaped (<c>\n</c>, <c>\t</c>,
/// <c>\x1b</c>, <c>\u202e</c>), so that no escape sequence, injected line or reordered text reaches the user's terminal;
/// and the text is capped so that a file cannot make an error line megabytes long.
/// </summary>
public static class Printable
{
    /// <summary>Default cap on shown characters (before escaping): enough for any real path, key or version.</summary>
    public const int DefaultMaxChars = 512;

    /// <summary>
    /// Messages from libraries may span lines; an error is always one line (lines joined with <c>; </c>). libtorch
    /// appends its C++ stack ("Exception raised from ...", "frame #0: ...") to the first line of its message: that part
    /// is dropped. Not escaped: pass the result through <see cref="Escape"/> before showing it.
    /// </summary>
    public static string OneLine(string m)
    {
        foreach (var marker in new[] { "Exception raised from ", "frame #0", "(most recent call first)" })
        {
            int cut = m.IndexOf(marker, StringComparison.Ordinal);
            if (cut >= 0) m = m[..cut];
        }
        return string.Join("; ", m.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).TrimEnd(';', ' ');
    }

    /// <summary>
    /// <paramref name="text"/> with every unsafe character escaped; longer than <paramref name="maxChars"/> characters,
    /// the rest is replaced by <c>…(N more characters)</c>. Backslashes are kept as they are (Linux paths may hold them).
    /// </summary>
    public static string Escape(string? text, int maxChars = DefaultMaxChars)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        int shown = Math.Min(text.Length, maxChars);
        if (shown == text.Length && !NeedsEscaping(text)) return text;
        var sb = new StringBuilder(shown + 16);
        for (int i = 0; i < shown; i++)
        {
            char c = text[i];
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (IsUnsafe(c)) sb.Append(c <= 0xFF ? $"\\x{(int)c:x2}" : $"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        if (shown < text.Length)
            sb.Append(CultureInfo.InvariantCulture, $"…({text.Length - shown} more characters)");
        return sb.ToString();
    }

    static bool NeedsEscaping(string text)
    {
        foreach (char c in text) if (c is '\n' or '\r' or '\t' || IsUnsafe(c)) return true;
        return false;
    }

    /// <summary>C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates, lone surrogates are unsafe.</summary>
    static bool IsUnsafe(char c) =>
        c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F)
        || c is '\u2028' or '\u2029' or '\u061C' or '\u200E' or '\u200F'
        || (c >= '\u202A' && c <= '\u202E') || (c >= '\u2066' && c <= '\u2069')
        || c == '\uFEFF';
}
