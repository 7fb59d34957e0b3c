using System.ComponentModel;
using System.Globalization;
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
        var e = CheckpointEvaluation.Run(checkpoint);
        if (s.Json) Console.WriteLine(e.Json()); // JSON-encoded: System.Text.Json escapes control characters
        else Print(checkpoint.Weights!, e.Result, e.ClassNames);
        if (e.SaveInRun(s.Checkpoint) is string problem)
            Terminal.Err($"warning: {ErrorHandling.OneLine(problem)}; the results above were printed but not saved");
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
