using System.ComponentModel;
using ResnetMnist.Config;
using ResnetMnist.Native;
using ResnetMnist.Weights;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class WeightsImportMlnetCommand : Command<WeightsImportMlnetCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--out <FILE>"), Description("Also copy the converted .pth (and its .safetensors) here.")]
        public string? Out { get; init; }

        [CommandOption("--unfolded"), Description("Keep ML.NET's BGR / 0-255 / mean-image input convention instead of folding it into conv1/bn1.")]
        public bool Unfolded { get; init; }

        [CommandOption("--verbose"), Description("Print stack traces on errors.")]
        public bool Verbose { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        NativeLoader.EnsureLoaded();
        // Says what happened: reused an earlier conversion, or converted the package's ONNX model (fetched first when no cache held it).
        bool reused = MlnetImporter.Converted(foldPreprocessing: !s.Unfolded) is not null, fetched = false;
        if (!reused)
            try { MlnetImporter.FindPackageDir(); }
            catch (FileNotFoundException) { fetched = true; }
        var pth = MlnetImporter.EnsureConverted(foldPreprocessing: !s.Unfolded);
        Terminal.Out(reused ? "reused the earlier conversion of ML.NET's ResNet18.onnx (nothing fetched or converted)"
            : $"{(fetched ? $"fetched {MlnetImporter.PackageId} {MlnetImporter.PackageVersion} from NuGet and " : "")}converted {MlnetImporter.OnnxModelPath()}");
        Terminal.Out($"  -> {pth}");
        Terminal.Out($"  -> {Path.ChangeExtension(pth, ".safetensors")}");
        if (s.Out is not null)
        {
            var outPth = ResnetMnist.Outputs.OutputFolder.ForFile(s.Out, "--out", create: true);
            // Replaced by rename: a link at either name is replaced, never written through.
            AtomicFile.Copy(pth, outPth, TorchArchive.MaxFileBytes);
            AtomicFile.Copy(Path.ChangeExtension(pth, ".safetensors"), Path.ChangeExtension(outPth, ".safetensors"), TorchArchive.MaxFileBytes);
            Terminal.Out($"  copied to {outPth} (+ .safetensors)");
        }
        return 0;
    }
}

sealed class WeightsInspectCommand : Command<WeightsInspectCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<FILE>"), Description(".pth (torch.save'd state_dict) or .safetensors file.")]
        public string File { get; init; } = "";

        [CommandOption("--config <CONFIG>"), Description("Config whose model.arch / in_channels / num_classes to check the file against as pretrained weights (default: infer the model from the file's shapes and check it as a checkpoint).")]
        public string? Config { get; init; }

        [CommandOption("--json"), Description("Print one JSON document on stdout and nothing else (the exit code still says whether it fits).")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        NativeLoader.EnsureLoaded();
        // Without a config (or --set), the model is read off the file's shapes; with one, the file is checked as
        // pretrained weights for the configured model.
        var report = s.Config is null && s.Set.Length == 0 ? WeightsInspector.InspectInferred(s.File)
            : Inspect(s.Config is null ? ConfigLoader.Parse("", null, s.Set) : ConfigLoader.Load(s.Config, s.Set), s.File,
                s.Config is null ? null : s.Config + (s.Set.Length > 0 ? " with --set" : ""));
        if (s.Json)
            Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new
            {
                report.Path, Format = report.Format.ToString(), report.Arch, report.InChannels, report.NumClasses, report.ParameterCount, report.Fits,
                report.Problems, report.Notes, report.Inferred, report.Backbone, Model = report.Recorded, ModelSource = report.RecordedIn, Tensors = report.Tensors.Select(t => new { t.Key, t.Shape, Dtype = t.DType }),
            }));
        else Terminal.OutLines(report.ToString());
        return report.Fits ? 0 : ErrorHandling.Usage;
    }

    static WeightsReport Inspect(TrainingConfig cfg, string file, string? configPath)
    {
        var report = WeightsInspector.Inspect(file, cfg.Model.InChannels, cfg.Model.NumClasses, cfg.Model.Arch);
        // A config given must configure the model the file records, if it records one.
        if (configPath is not null && report.Recorded?.Contradiction(cfg.ModelRecord()) is { } c)
            throw new ResnetMnist.Training.CheckpointException($"{file}: {c.Key} is {c.Configured} in {configPath} but {c.Recorded} in the checkpoint ({report.RecordedIn}); pass a config for that model, or leave it out");
        return report;
    }
}
