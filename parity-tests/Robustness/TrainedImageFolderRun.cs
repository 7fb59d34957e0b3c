namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// One small finished image-folder run, a fine-tune as a user would start one: ML.NET's ImageNet ResNet-18 weights
/// (<c>model.pretrained: mlnet</c>, packaged with the tool: conv1 kept, a fresh 3-class <c>fc</c>), one epoch on the
/// committed fixture (parity-tests/data/imagefolder-fixture: classes cat, dog, emu; 12 training and 6 validation
/// images), 32 pixels, augmented and normalised, batches of 6; trained once through the tool and shared by the tests
/// that need an image-folder checkpoint (evaluate, predict, export).
/// </summary>
public static class TrainedImageFolderRun
{
    /// <summary>The fixture's class folders, sorted: the run's class names.</summary>
    public static readonly string[] Classes = ["cat", "dog", "emu"];

    /// <summary><c>data.image_size</c> of the run, pixels.</summary>
    public const int ImageSize = 32;

    public static string Root => Repo.Path("parity-tests", "data", "imagefolder-fixture");

    static readonly Lazy<string> run = new(() =>
    {
        var dir = TempDir.New("imagefolder");
        var cfg = Tool.WriteConfig(dir, $$"""
            seed: 1
            threads: 2
            model: {pretrained: mlnet}
            data: {dataset: imagefolder, root: '{{Root}}', augment: true, normalize: true, image_size: {{ImageSize}}}
            train: {epochs: 1, batch_size: 6}
            """);
        var runDir = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", cfg, "--out", runDir]);
        if (r.ExitCode != 0 || !File.Exists(Path.Combine(runDir, "checkpoints", "best.pt")))
            throw new InvalidOperationException($"training the shared image-folder run failed\n{r}");
        var summary = File.ReadAllText(Path.Combine(runDir, "summary.json"));
        if (!summary.Contains("\"weights_source\": \"mlnet\"", StringComparison.Ordinal))
            throw new InvalidOperationException($"the shared image-folder run did not start from the mlnet weights: {summary}");
        return runDir;
    });

    public static string Dir => run.Value;
    public static string BestPt => Path.Combine(Dir, "checkpoints", "best.pt");
}
