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
        var checkpoint = s.Resolve(CheckpointUse.Evaluate);
        var (cfg, weights) = (checkpoint.Config, checkpoint.Weights!);
        using var session = checkpoint.Open(Splits.Test);
        var e = Evaluator.Run(session.Model, session.Test, cfg.Train.EvalBatchSize, cfg.Model.NumClasses);
        int classes = cfg.Model.NumClasses;
        var names = ClassNames.For(session.Dataset, cfg.Model.NumClasses);
        var doc = new
        {
            Checkpoint = Path.GetFullPath(weights),
            Arch = cfg.Model.Arch.Name,
            Dataset = cfg.Data.Dataset.Name,
            TestImages = e.Count,
            TestLoss = e.Loss,
            TestAccuracy = e.Accuracy,
            ClassNames = names,
            PerClassAccuracy = e.PerClassAccuracy(),
            Confusion = Enumerable.Range(0, classes).Select(i => Enumerable.Range(0, classes).Select(j => e.Confusion[i, j]).ToArray()).ToArray(),
        };
        var json = RunDirectory.SummaryJson(doc);
        if (s.Json) Console.WriteLine(json); // JSON-encoded: System.Text.Json escapes control characters
        else Print(weights, e, names);
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

    /// <summary>The results and the confusion matrix: a row per true class, named (<c>3 cat</c>, or <c>7</c> where the name is the number), a column per predicted label.</summary>
    static void Print(string weights, Evaluation e, IReadOnlyList<string> names)
    {
        int k = names.Count;
        Terminal.Out($"checkpoint: {weights}");
        Terminal.Out(string.Create(CultureInfo.InvariantCulture, $"test images: {e.Count}, test loss: {e.Loss:F4}, test accuracy: {e.Accuracy:F2}%"));
        var table = new Table().AddColumn("true \\ predicted");
        for (int j = 0; j < k; j++) table.AddColumn(j.ToString(CultureInfo.InvariantCulture));
        table.AddColumn("accuracy %");
        var per = e.PerClassAccuracy();
        for (int i = 0; i < k; i++)
        {
            var label = i.ToString(CultureInfo.InvariantCulture);
            var row = new List<string> { Markup.Escape(Terminal.Safe(names[i] == label ? label : $"{label} {names[i]}")) };
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

    /// <summary>The checkpoint and the config it belongs to (<see cref="CheckpointConfig.Resolve"/>), resolved for <paramref name="use"/>.</summary>
    public ResolvedCheckpoint Resolve(CheckpointUse use) => CheckpointConfig.Resolve(Checkpoint, Config, Set, use, Terminal.Err);
}
