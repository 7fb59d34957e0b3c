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
        var saved = new HashSet<string>(StringComparer.Ordinal);
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
            if (s.SaveInput is not null) ResnetMnist.Outputs.OutputFolder.RefuseSystemFolder(s.SaveInput);
            if (s.SaveInput is not null) Directory.CreateDirectory(s.SaveInput);
            var names = ClassNames.For(session.Dataset, cfg.Model.NumClasses);   // imagefolder: the class folders of ROOT/train
            using var _ = no_grad();
            for (int at = 0; at < images.Count; at++)
            {
                if (results[at] is not null) continue;
                var image = images[at];
                using var scope = NewDisposeScope();
                Tensor x;
                // An image-folder model: read as Pillow reads it and transformed as its validation images were.
                var transforms = session.Dataset.Files is ResnetMnist.Data.Images.ImageFolderFiles
                    ? ResnetMnist.Data.Images.ImageTransforms.For(cfg.Data.ImageSize, cfg.Data.ResizeSize) : null;
                try { x = PredictInput.Load(image, invert, session.Dataset, transforms); }
                catch (DataException e) { Fail(at, e); continue; }
                if (s.SaveInput is not null) PredictInput.SavePng(x, SavedName(s.SaveInput, image, saved));
                if (cfg.Data.Normalize) x = PredictInput.Normalize(x, session.Dataset);
                x = x.to_type(session.Dtype).to(session.Device);
                var p = nn.functional.softmax(session.Model.forward(x), 1)[0].to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                int cls = Array.IndexOf(p, p.Max());
                results[at] = new { Image = image, Class = cls, ClassName = names[cls], Probability = p[cls], Probabilities = p };
                if (!s.Json)
                    Terminal.Out(string.Create(CultureInfo.InvariantCulture,
                        $"{image}: {names[cls]} ({p[cls] * 100:F1}%)  [{string.Join(" ", p.Select((v, i) => $"{i}:{v:F3}"))}]"));
            }
        }
        if (s.Json) Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new { Checkpoint = Path.GetFullPath(weights), Predictions = results }));
        return failed == 0 ? ErrorHandling.Ok : ErrorHandling.Failure;
    }

    /// <summary><c>DIR/&lt;image name&gt;.png</c>; a second image of the same name in this call gets <c>-2</c>, <c>-3</c>, ….</summary>
    static string SavedName(string dir, string image, HashSet<string> taken)
    {
        var stem = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(image));
        var name = stem + ".png";
        for (int n = 2; !taken.Add(name); n++) name = $"{stem}-{n}.png";
        return Path.Combine(dir, name);
    }
}
