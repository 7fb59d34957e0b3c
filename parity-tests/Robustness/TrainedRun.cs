namespace ResnetMnist.ParityTests.Robustness;

/// <summary>One small finished run (64 images, 1 epoch), trained once and shared by the tests that need a checkpoint.</summary>
public static class TrainedRun
{
    static readonly Lazy<string> run = new(() =>
    {
        var dir = TempDir.New("trained");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var runDir = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", cfg, "--out", runDir]);
        if (r.ExitCode != 0 || !File.Exists(Path.Combine(runDir, "checkpoints", "best.pt")))
            throw new InvalidOperationException($"training the shared small run failed\n{r}");
        return runDir;
    });

    public static string Dir => run.Value;
    public static string BestPt => Path.Combine(Dir, "checkpoints", "best.pt");

    /// <summary>
    /// Copies the run folder, as training left it, to <paramref name="target"/> (for tests that change it): without its
    /// lock, and without the <c>eval.json</c> that a test evaluating the shared run may have added meanwhile.
    /// </summary>
    public static string CopyTo(string target)
    {
        foreach (var f in Directory.GetFiles(Dir, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(f) is ".lock" or "eval.json") continue;
            var to = Path.Combine(target, Path.GetRelativePath(Dir, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return target;
    }
}
