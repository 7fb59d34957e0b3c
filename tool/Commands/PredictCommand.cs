using System.ComponentModel;
using System.Globalization;
using ResnetMnist.Data;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : CheckpointSettings
    {
        [CommandArgument(1, "[IMAGE]"), Description("PNG or JPEG images, or folders (their PNG/JPEG files, sorted by name; subfolders are not searched). Any size. MNIST models: as MNIST's digits were made (cropped to the ink, fitted in 20×20 keeping the aspect ratio, centred by centre of mass in 28×28); other datasets: resized to their size (32×32 colour for CIFAR-10). A bad image gets an error: line and the others are still classified; exit 1 when any failed.")]
        public string[] Images { get; init; } = [];

        [CommandOption("--invert <auto|true|false>"), Description("Grey models: invert gray levels (MNIST is white on black). Default auto: for MNIST, inverted when the image's border is light.")]
        public string Invert { get; init; } = "auto";

        [CommandOption("--save-input <DIR>"), Description("Write what the model saw for each image as DIR/<image name>.png (created; a file of that name is replaced).")]
        public string? SaveInput { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var checkpoint = s.Resolve(CheckpointUse.Predict);
        bool? invert = s.Invert switch
        {
            "auto" => null, "true" => true, "false" => false,
            _ => throw new UsageException($"--invert {s.Invert}: allowed: auto, true, false"),
        };
        // Everything after "--" is an image path too, even one that starts with '-'.
        var arguments = s.Images.Concat(context.Remaining.Raw).Concat(ErrorHandling.AfterDoubleDash).ToList();
        if (arguments.Count == 0) throw new UsageException("predict: no IMAGE given; allowed: one or more PNG/JPEG files or folders (after -- for names starting with '-')");
        var results = Prediction.Run(checkpoint, InputImage.Expand(arguments), invert, s.SaveInput, r =>
        {
            if (r.Error is not null) ErrorHandling.PrintError(r.Error);
            else if (!s.Json)
                Terminal.Out(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Image}: {r.ClassName} ({r.Probability * 100:F1}%)  [{string.Join(" ", r.Probabilities!.Select((v, i) => $"{i}:{v:F3}"))}]"));
        });
        if (s.Json)
            Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new
            {
                Checkpoint = Path.GetFullPath(checkpoint.Weights!),
                Predictions = results.Select(r => r.Error is not null
                    ? (object)new { r.Image, Error = ErrorHandling.OneLine(r.Error) }
                    : new { r.Image, r.Class, r.ClassName, r.Probability, r.Probabilities }),
            }));
        return results.Any(r => r.Error is not null) ? ErrorHandling.Failure : ErrorHandling.Ok;
    }
}
