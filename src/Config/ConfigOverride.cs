namespace ResnetMnist.Config;

/// <summary>
/// One <c>key.path=value</c> override of a config (the value is YAML) and the command-line option that gave it
/// (<c>--set</c>, <c>--grid</c>): errors about it name that option.
/// </summary>
public sealed record ConfigOverride(string Option, string Assignment)
{
    /// <summary><paramref name="assignments"/> as <c>--set</c> overrides.</summary>
    public static IEnumerable<ConfigOverride> Set(IEnumerable<string>? assignments) =>
        (assignments ?? []).Select(a => new ConfigOverride("--set", a));
}
