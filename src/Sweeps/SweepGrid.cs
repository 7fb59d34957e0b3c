using System.Globalization;
using ResnetMnist.Data;

namespace ResnetMnist.Sweeps;

/// <summary>A sweep's input that cannot be used (a <c>--grid</c>, <c>--shard</c> or shard variable): exit 2.</summary>
public sealed class SweepException(string message) : BadInputException(message);

/// <summary>One <c>--grid key=v1,v2,...</c>: a config key and its values, each a YAML value as <c>--set</c> takes it.</summary>
public sealed record SweepAxis(string Key, IReadOnlyList<string> Values);

/// <summary>
/// The grid of a sweep: its <c>--grid</c> options parsed into axes and expanded into combinations, the first axis
/// varying slowest (<c>--grid a=1,2 --grid b=x,y</c> gives a=1 b=x, a=1 b=y, a=2 b=x, a=2 b=y); a combination's
/// index in that order is its run index (the shards split the grid by it).
/// </summary>
public static class SweepGrid
{
    /// <summary>Most runs one sweep may have: 10,000.</summary>
    public const int MaxRuns = 10_000;

    /// <summary>Parses every <c>--grid</c> option; refuses none, a key given twice, and more than <see cref="MaxRuns"/> combinations.</summary>
    public static IReadOnlyList<SweepAxis> Parse(IReadOnlyList<string> grid)
    {
        if (grid.Count == 0) throw new SweepException("sweep: give at least one --grid key=v1,v2");
        var axes = grid.Select(ParseAxis).ToList();
        var twice = axes.GroupBy(a => a.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new SweepException($"--grid {twice.Key}: given in two --grid options; allowed: each key in one --grid, with all its values");
        // The size first: a grid is expanded (and every combination validated) only when it is small enough to run.
        long count = 1;
        foreach (var a in axes) count = Math.Min(count * a.Values.Count, MaxRuns + 1L);
        if (count > MaxRuns)
            throw new SweepException($"--grid: {string.Join(" × ", axes.Select(a => a.Values.Count.ToString(CultureInfo.InvariantCulture)))} combinations " +
                                     $"is more than {MaxRuns.ToString("N0", CultureInfo.InvariantCulture)} runs; allowed: at most {MaxRuns.ToString("N0", CultureInfo.InvariantCulture)} runs per sweep (split it into several sweeps)");
        return axes;
    }

    /// <summary>One <c>key=v1,v2,...</c>; the values are split at top-level commas only (<see cref="SplitValues"/>).</summary>
    public static SweepAxis ParseAxis(string option)
    {
        int eq = option.IndexOf('=');
        if (eq <= 0) throw new SweepException($"--grid {option}: expected key=v1,v2,... (for example --grid optimizer.lr=0.001,0.01)");
        var key = option[..eq].Trim();
        var values = SplitValues(option[(eq + 1)..], option);
        if (values.Count == 0) throw new SweepException($"--grid {option}: no values; allowed: key=v1,v2,... with at least one value");
        return new SweepAxis(key, values);
    }

    /// <summary>
    /// Splits <paramref name="text"/> at the commas outside YAML brackets (<c>[]</c>, <c>{}</c>) and quotes, so that a
    /// value may be a list: <c>[0.9,0.99],[0.8,0.99]</c> is two values. Values are trimmed; empty ones are dropped.
    /// </summary>
    public static IReadOnlyList<string> SplitValues(string text, string option)
    {
        var values = new List<string>();
        var open = new Stack<char>();
        char quote = '\0';
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; continue; } // YAML's '' and \" escapes close and reopen: same split
            switch (c)
            {
                case '\'' or '"': quote = c; break;
                case '[' or '{': open.Push(c); break;
                case ']' or '}':
                    if (open.Count == 0 || open.Pop() != (c == ']' ? '[' : '{'))
                        throw new SweepException($"--grid {option}: '{c}' at character {i + 1 + option.Length - text.Length} closes no bracket; allowed: YAML values separated by commas, e.g. --grid \"optimizer.betas=[0.9,0.99],[0.8,0.99]\"");
                    break;
                case ',' when open.Count == 0:
                    values.Add(text[start..i]);
                    start = i + 1;
                    break;
            }
        }
        if (quote != '\0') throw new SweepException($"--grid {option}: a {(quote == '"' ? "double" : "single")} quote is not closed; allowed: YAML values separated by commas");
        if (open.Count > 0) throw new SweepException($"--grid {option}: '{open.Peek()}' is not closed; allowed: YAML values separated by commas, e.g. --grid \"optimizer.betas=[0.9,0.99],[0.8,0.99]\"");
        values.Add(text[start..]);
        return values.Select(v => v.Trim()).Where(v => v.Length > 0).ToList();
    }

    /// <summary>Every combination of the axes' values, the first axis varying slowest.</summary>
    public static IReadOnlyList<IReadOnlyList<(string Key, string Value)>> Expand(IReadOnlyList<SweepAxis> axes)
    {
        IEnumerable<IReadOnlyList<(string Key, string Value)>> combos = [[]];
        foreach (var a in axes) combos = combos.SelectMany(c => a.Values.Select(v => (IReadOnlyList<(string, string)>)[.. c, (a.Key, v)])).ToList();
        return combos.ToList();
    }
}
