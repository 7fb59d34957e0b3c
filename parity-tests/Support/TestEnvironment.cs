using NUnit.Framework;

namespace ResnetMnist.ParityTests;

/// <summary>
/// What the tests take from the machine, kept in one place: the cache and package variables (set to this test run's
/// own folders, so that no result depends on the user's caches), and the one safety cap on waiting for a process.
/// </summary>
public static class TestEnvironment
{
    /// <summary>
    /// The longest a test waits for a process (the tool, the reference Python) before it stops it and fails, saying
    /// what it waited for. Not a speed check: the tests wait on progress (an output line, an exit), and this cap only
    /// ends a hung process; a busy machine runs the same work several times slower, far below it.
    /// </summary>
    public static readonly TimeSpan SafetyCap = TimeSpan.FromMinutes(20);

    /// <summary>The variables through which the tool finds its caches and packages (torch.hub, ML.NET's package, converted weights, the patched native bridge).</summary>
    public static readonly string[] CacheVariables = ["HOME", "XDG_CACHE_HOME", "TORCH_HOME", "NUGET_PACKAGES"];

    static readonly Lazy<IReadOnlyDictionary<string, string>> Own = new(() =>
    {
        var home = TempDir.New("home");
        var own = new Dictionary<string, string>
        {
            ["HOME"] = home,
            ["XDG_CACHE_HOME"] = Path.Combine(home, ".cache"),
            ["TORCH_HOME"] = Path.Combine(home, ".cache", "torch"),
            ["NUGET_PACKAGES"] = Path.Combine(home, ".nuget", "packages"),
        };
        foreach (var dir in own.Values) Directory.CreateDirectory(dir);
        return own;
    });

    /// <summary>
    /// This test run's own value of each of <see cref="CacheVariables"/>: an empty home folder with empty
    /// <c>.cache</c>, <c>.cache/torch</c> and <c>.nuget/packages</c> (shared by the run, so that a cache the tool
    /// fills is reused by the next tool run of the same test run, as it would be on a user's machine).
    /// </summary>
    public static IReadOnlyDictionary<string, string> Clean => Own.Value;

    /// <summary>The user's own values of <see cref="CacheVariables"/> (null: unset), as they were before <see cref="UseOwnFolders"/>.</summary>
    public static IReadOnlyDictionary<string, string?> User { get; private set; } =
        CacheVariables.ToDictionary(v => v, Environment.GetEnvironmentVariable);

    /// <summary>
    /// Sets <see cref="CacheVariables"/> of this test process to <see cref="Clean"/>, so that the library, called in
    /// process (converted weights, the NuGet lookup, the patched native bridge), and every child inherit this run's own
    /// folders. Called once, before any test.
    /// </summary>
    public static void UseOwnFolders()
    {
        User = CacheVariables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
        foreach (var (name, value) in Clean) Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary>The signals tests send to the tool to interrupt a run: the name <c>kill</c> takes, and the number.</summary>
    static readonly (string Name, int Number)[] InterruptSignals = [("HUP", 1), ("INT", 2), ("TERM", 15)];

    /// <summary>
    /// Those of <see cref="InterruptSignals"/> that this test process ignores (<c>SigIgn</c> of <c>/proc/self/status</c>):
    /// a test run started under <c>nohup</c> ignores SIGHUP, one started in the background by a shell without job
    /// control ignores SIGINT, every process it starts inherits that, and .NET keeps an inherited ignored signal ignored,
    /// so the tool would never see them. <see cref="Tool"/> then starts the tool with them reset to their defaults.
    /// </summary>
    public static readonly Lazy<IReadOnlyList<string>> IgnoredInterruptSignals = new(() =>
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) : null;
        if (line is null) return [];
        ulong mask = Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16);
        return InterruptSignals.Where(s => (mask & (1UL << (s.Number - 1))) != 0).Select(s => s.Name).ToList();
    });

    /// <summary>
    /// The command prefix that starts a process with <see cref="IgnoredInterruptSignals"/> reset to their default
    /// handling (GNU <c>env --default-signal</c>, coreutils 8.31 and later); empty when none is ignored, null when some
    /// are but this <c>env</c> cannot reset them.
    /// </summary>
    public static readonly Lazy<string[]?> SignalReset = new(() =>
    {
        var ignored = IgnoredInterruptSignals.Value;
        if (ignored.Count == 0) return [];
        string[] prefix = ["env", "--default-signal=" + string.Join(',', ignored)];
        try
        {
            using var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(prefix[0], [.. prefix[1..], "true"])
                { UseShellExecute = false, RedirectStandardError = true })!;
            probe.StandardError.ReadToEnd();
            probe.WaitForExit();
            return probe.ExitCode == 0 ? prefix : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    });

    /// <summary>
    /// Sets environment variables of this process (a null value removes one) until disposed, then restores them. For
    /// tests that call the library directly; tests run one at a time unless marked parallelizable.
    /// </summary>
    public static IDisposable Set(params (string Name, string? Value)[] variables) => new Scope(variables);

    sealed class Scope : IDisposable
    {
        readonly List<(string Name, string? Value)> _before = [];

        public Scope((string Name, string? Value)[] variables)
        {
            foreach (var (name, value) in variables)
            {
                _before.Add((name, Environment.GetEnvironmentVariable(name)));
                Environment.SetEnvironmentVariable(name, value);
            }
        }

        public void Dispose()
        {
            for (int i = _before.Count - 1; i >= 0; i--) Environment.SetEnvironmentVariable(_before[i].Name, _before[i].Value);
        }
    }

    /// <summary>Fails with <paramref name="what"/> and the cap when a wait reached <see cref="SafetyCap"/>.</summary>
    public static void FailCapped(string what, string details = "") =>
        Assert.Fail($"{what} did not finish within the safety cap of {SafetyCap.TotalMinutes:F0} min (a hang, not slowness: " +
                    $"the work takes seconds to minutes even on a busy machine); stopped it{(details.Length > 0 ? "\n" + details : "")}");
}
