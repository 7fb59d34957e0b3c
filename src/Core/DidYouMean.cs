namespace ResnetMnist.Core;

/// <summary>Did-you-mean suggestions for a value that is not allowed (a key, a name from a registry).</summary>
public static class DidYouMean
{
    /// <summary>Most edits (Levenshtein distance) for a suggestion: 2.</summary>
    public const int MaxEdits = 2;

    /// <summary><c> (did you mean 'x'?)</c> for the allowed value nearest to <paramref name="value"/> (case-insensitive), or "" when none is within <see cref="MaxEdits"/>.</summary>
    public static string Hint(IEnumerable<string> allowed, string value)
    {
        var v = value.ToLowerInvariant();
        var near = allowed.MinBy(a => Distance(a.ToLowerInvariant(), v));
        return near is not null && Distance(near.ToLowerInvariant(), v) <= MaxEdits ? $" (did you mean '{near}'?)" : "";
    }

    /// <summary>Levenshtein distance between <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
