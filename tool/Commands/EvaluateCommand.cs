using System.ComponentModel;
using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Weights;
using ResnetMnist.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : CheckpointSettings { }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var (cfg, weights) = s.Resolve();
        using var session = CheckpointSettings.OpenSession(cfg, weights, Splits.Test);
        var e = Evaluator.Run(session.Model, session.Test, cfg.Train.EvalBatchSize, cfg.Model.NumClasses);
        int classes = cfg.Model.NumClasses;
        var doc = new
        {
            Checkpoint = Path.GetFullPath(weights),
            Arch = cfg.Model.Arch.Name,
            Dataset = cfg.Data.Dataset,
            TestImages = e.Count,
            TestLoss = e.Loss,
            TestAccuracy = e.Accuracy,
            PerClassAccuracy = e.PerClassAccuracy(),
            Confusion = Enumerable.Range(0, classes).Select(i => Enumerable.Range(0, classes).Select(j => e.Confusion[i, j]).ToArray()).ToArray(),
        };
        var json = RunDirectory.SummaryJson(doc);
        if (s.Json) Console.WriteLine(json); // JSON-encoded: System.Text.Json escapes control characters
        else Print(weights, e, classes);
        // evaluate RUN keeps the result beside the run's other files; a folder that cannot be written (read-only) does
        // not cost the results printed above: a warning says that eval.json was not written.
        if (Directory.Exists(s.Checkpoint) && File.Exists(Path.Combine(s.Checkpoint, RunDirectory.MarkerName)))
        {
            var file = Path.Combine(s.Checkpoint, "eval.json");
            try { AtomicFile.WriteAllText(file, json + "\n"); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Terminal.Err($"warning: {ErrorHandling.OneLine(ex.Message)}; the results above were printed but not saved");
            }
        }
        return 0;
    }

    static void Print(string weights, Evaluation e, int k)
    {
        Terminal.Out($"checkpoint: {weights}");
        Terminal.Out(string.Create(CultureInfo.InvariantCulture, $"test images: {e.Count}, test loss: {e.Loss:F4}, test accuracy: {e.Accuracy:F2}%"));
        var table = new Table().AddColumn("true \\ predicted");
        for (int j = 0; j < k; j++) table.AddColumn(j.ToString(CultureInfo.InvariantCulture));
        table.AddColumn("accuracy %");
        var per = e.PerClassAccuracy();
        for (int i = 0; i < k; i++)
        {
            var row = new List<string> { i.ToString(CultureInfo.InvariantCulture) };
            for (int j = 0; j < k; j++) row.Add(e.Confusion[i, j].ToString(CultureInfo.InvariantCulture));
            row.Add(per[i].ToString("F2", CultureInfo.InvariantCulture));
            table.AddRow(row.ToArray());
        }
        AnsiConsole.Write(table);
    }
}

/// <summary>A checkpoint argument: a .pt file (its run's config.yaml is found above it) or a run folder.</summary>
class CheckpointSettings : CommonSettings
{
    [CommandArgument(0, "<CHECKPOINT>"), Description("A run folder (uses checkpoints/best.pt) or a .pt state_dict.")]
    public string Checkpoint { get; init; } = "";

    [CommandOption("--config <CONFIG>"), Description("Config to use (default: the run folder's config.yaml).")]
    public string? Config { get; init; }

    [CommandOption("--json"), Description("Print one JSON document on stdout and nothing else.")]
    public bool Json { get; init; }

    /// <summary>
    /// The model of <paramref name="weights"/> (and the <paramref name="splits"/> it needs): refused, naming the file and
    /// the first tensor, when the checkpoint holds NaN or infinite weights (a diverged run's), whose predictions,
    /// accuracy or exported model would be meaningless.
    /// </summary>
    public static Session OpenSession(TrainingConfig cfg, string weights, Splits splits)
    {
        var session = Session.Create(cfg, splits, checkpoint: weights);
        if (StateDictChecks.FirstNonFinite(session.Model.state_dict()) is string bad)
        {
            session.Dispose();
            throw new CheckpointException($"{weights}: {bad} holds NaN or infinite values (the weights of a diverged run); allowed: finite weights; use an earlier checkpoint");
        }
        return session;
    }

    public (TrainingConfig, string) Resolve()
    {
        // A run folder: its best.pt, or last.pt where train.save kept no best.pt.
        string weights = !Directory.Exists(Checkpoint) ? Checkpoint
            : new[] { "best.pt", "last.pt" }.Select(f => Path.Combine(Checkpoint, "checkpoints", f)).FirstOrDefault(File.Exists)
              ?? Path.Combine(Checkpoint, "checkpoints", "best.pt");
        if (InputFiles.KindOf(weights) is InputFiles.Kind.Missing or InputFiles.Kind.Directory) throw new UsageException($"{weights}: checkpoint not found");
        // Refused here, before anything opens it: a FIFO or device would block the reader.
        InputFiles.RequireRegularFile(weights, "a .pt state_dict (torch.save zip)", TorchArchive.MaxFileBytes, m => new UsageException($"{weights}: {m}"));
        var dir = Path.GetDirectoryName(Path.GetFullPath(weights))!;
        var config = Config ?? new[] { Path.Combine(dir, "config.yaml"), Path.Combine(dir, "..", "config.yaml") }.FirstOrDefault(File.Exists);
        ResnetMnist.Native.NativeLoader.EnsureLoaded(); // before anything touches torch
        if (config is not null)
        {
            // A config wins, but must configure the model the checkpoint records (if it records one).
            var configured = ConfigLoader.Load(config, Set);
            (CheckpointModel Model, string Source)? found;
            try { found = CheckpointModel.Find(weights); }
            catch (WeightsFileException) { found = null; } // an unreadable file is reported when the model loads it
            if (found is { } f && f.Model.Contradiction(configured) is { } c)
                throw new CheckpointException($"{weights}: {c.Key} is {c.Configured} in {config}{(Set.Length > 0 ? " with --set" : "")} but {c.Recorded} in the checkpoint ({f.Source}); pass a config for that model, or leave it out");
            return (configured, weights);
        }
        // A bare .pt (copied out of its run): the model it records (its metadata, else the JSON beside it), else the
        // model read off the file's shapes; the data is MNIST in ./data or the packaged sample, unless --set says otherwise.
        var recorded = CheckpointModel.Find(weights);
        var tensors = WeightsFile.ReadIndex(weights).Select(e => new TensorInfo(e.Key, e.Shape, e.DType)).ToList();
        var m = WeightsInspector.Infer(tensors);
        if (recorded is null && m is null)
            throw new UsageException($"{weights}: no config.yaml beside it or in its run folder, no recorded model, and no conv1.weight/fc.weight to infer the model from; pass --config CONFIG.yaml");
        var dtype = (m?.Dtype ?? DtypeKind.Float32).Name();
        var model = recorded is { } r ? r.Model.Overrides().ToArray()
            : [$"model.arch={m!.Arch.Name}", $"model.in_channels={m.InChannels}", $"model.num_classes={m.NumClasses}"];
        var settings = model.Append($"train.dtype={dtype}").ToList();
        var needsData = this is not PredictCommand.Settings;
        bool mnistData = recorded is null || recorded.Value.Model.Dataset == "mnist";
        if (needsData && mnistData && !Set.Any(x => x.StartsWith("data.root=", StringComparison.Ordinal))) settings.Add(PackagedFiles.DataRootOverride());
        var cfg = ConfigLoader.Parse("", null, settings.Concat(Set));
        if (recorded is { } given && given.Model.Contradiction(cfg) is { } d)
            throw new CheckpointException($"{weights}: {d.Key} is {d.Configured} with --set but {d.Recorded} in the checkpoint ({given.Source}); leave it out");
        Terminal.Err((recorded is { } rec
            ? $"{weights}: no config.yaml found; model recorded in {rec.Source}: {rec.Model.Describe()}; {dtype}"
            : $"{weights}: no config.yaml found; model inferred from the file: {m!.Arch.Name}, in_channels {m.InChannels}, num_classes {m.NumClasses}, {dtype}") +
                                (needsData ? $"; data: {cfg.Data.Dataset} in {cfg.Data.Root}" : ""));
        return (cfg, weights);
    }
}
