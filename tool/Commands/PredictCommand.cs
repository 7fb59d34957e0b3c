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
        [CommandArgument(1, "[IMAGE]"), Description("PNG or JPEG images, or folders (their PNG/JPEG files, sorted by name; subfolders are not searched). Any size; resized to the dataset's size: 28×28 grey for MNIST, 32×32 colour for CIFAR-10. A bad image gets an error: line and the others are still classified; exit 1 when any failed.")]
        public string[] Images { get; init; } = [];

        [CommandOption("--invert <auto|true|false>"), Description("Grey models: invert gray levels (MNIST is white on black). Default auto.")]
        public string Invert { get; init; } = "auto";
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var checkpoint = s.Resolve(CheckpointUse.Predict);
        var (cfg, weights) = (checkpoint.Config, checkpoint.Weights!);
        bool? invert = s.Invert switch
        {
            "auto" => null, "true" => true, "false" => false,
            _ => throw new UsageException($"--invert {s.Invert}: allowed: auto, true, false"),
        };
        // Everything after "--" is an image path too, even one that starts with '-'.
        var arguments = s.Images.Concat(context.Remaining.Raw).Concat(ErrorHandling.AfterDoubleDash).ToList();
        if (arguments.Count == 0) throw new UsageException("predict: no IMAGE given; allowed: one or more PNG/JPEG files or folders (after -- for names starting with '-')");
        var images = InputImage.Expand(arguments);
        // A bad image is reported and skipped; the others are still classified. Each is checked before the model is
        // built, so bad images are refused cheaply (and no model is built when none is readable).
        var results = new object?[images.Count];
        int failed = 0;
        void Fail(int at, BadInputException e)
        {
            failed++;
            ErrorHandling.PrintError(e.Message);
            results[at] = new { Image = images[at], Error = ErrorHandling.OneLine(e.Message) };
        }
        for (int at = 0; at < images.Count; at++)
            try { InputImage.Check(images[at]); }
            catch (BadInputException e) { Fail(at, e); }
        if (failed < images.Count)
        {
            using var session = checkpoint.Open(Splits.None);
            session.Model.eval();
            using var _ = no_grad();
            for (int at = 0; at < images.Count; at++)
            {
                if (results[at] is not null) continue;
                var image = images[at];
                using var scope = NewDisposeScope();
                Tensor x;
                var transforms = session.Dataset.Files is ResnetMnist.Data.Images.ImageFolderFiles
                    ? ResnetMnist.Data.Images.ImageTransforms.For(cfg.Data.ImageSize, cfg.Data.ResizeSize) : null;
                try { x = InputImage.Load(image, invert, cfg.Data.Normalize, session.Dataset, transforms).to_type(session.Dtype).to(session.Device); }
                catch (DataException e) { Fail(at, e); continue; }
                var p = nn.functional.softmax(session.Model.forward(x), 1)[0].to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                int cls = Array.IndexOf(p, p.Max());
                results[at] = new { Image = image, Class = cls, Probability = p[cls], Probabilities = p };
                if (!s.Json)
                    Terminal.Out(string.Create(CultureInfo.InvariantCulture,
                        $"{image}: {cls} ({p[cls] * 100:F1}%)  [{string.Join(" ", p.Select((v, i) => $"{i}:{v:F3}"))}]"));
            }
        }
        if (s.Json) Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new { Checkpoint = Path.GetFullPath(weights), Predictions = results }));
        return failed == 0 ? ErrorHandling.Ok : ErrorHandling.Failure;
    }
}
