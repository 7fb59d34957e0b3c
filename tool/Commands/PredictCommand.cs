using System.ComponentModel;
using System.Globalization;
using ResnetMnist.Data;
using ResnetMnist.Training;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace ResnetMnist.Tool.Commands;

sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : CheckpointSettings
    {
        [CommandArgument(1, "[IMAGE]"), Description("PNG or JPEG images (any size; resized to the dataset's size: 28×28 grey for MNIST, 32×32 colour for CIFAR-10).")]
        public string[] Images { get; init; } = [];

        [CommandOption("--invert <auto|true|false>"), Description("Grey models: invert gray levels (MNIST is white on black). Default auto.")]
        public string Invert { get; init; } = "auto";
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var (cfg, weights) = s.Resolve();
        bool? invert = s.Invert switch
        {
            "auto" => null, "true" => true, "false" => false,
            _ => throw new UsageException($"--invert {s.Invert}: allowed: auto, true, false"),
        };
        // Everything after "--" is an image path too, even one that starts with '-'.
        var images = s.Images.Concat(context.Remaining.Raw).Concat(ErrorHandling.AfterDoubleDash).ToList();
        if (images.Count == 0) throw new UsageException("predict: no IMAGE given; allowed: one or more PNG/JPEG files (after -- for names starting with '-')");
        foreach (var image in images) InputImage.Check(image);   // before the model is built: refuse bad images cheaply
        using var session = CheckpointSettings.OpenSession(cfg, weights, Splits.None);
        session.Model.eval();
        using var _ = no_grad();
        var predictions = new List<object>();
        foreach (var image in images)
        {
            using var scope = NewDisposeScope();
            var x = InputImage.Load(image, invert, cfg.Data.Normalize, session.Dataset).to_type(session.Dtype).to(session.Device);
            var p = nn.functional.softmax(session.Model.forward(x), 1)[0].to_type(ScalarType.Float64).cpu().data<double>().ToArray();
            int cls = Array.IndexOf(p, p.Max());
            if (s.Json)
            {
                predictions.Add(new { Image = image, Class = cls, Probability = p[cls], Probabilities = p });
                continue;
            }
            Terminal.Out(string.Create(CultureInfo.InvariantCulture,
                $"{image}: {cls} ({p[cls] * 100:F1}%)  [{string.Join(" ", p.Select((v, i) => $"{i}:{v:F3}"))}]"));
        }
        if (s.Json) Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new { Checkpoint = Path.GetFullPath(weights), Predictions = predictions }));
        return 0;
    }
}
