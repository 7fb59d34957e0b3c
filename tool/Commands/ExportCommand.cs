using System.ComponentModel;
using ResnetMnist.Export;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

/// <summary><c>export CHECKPOINT --format onnx --out model.onnx</c>: the trained model as a standard ONNX graph for deployment.</summary>
sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CheckpointSettings
    {
        [CommandOption("--format <FORMAT>"), Description("Output format: onnx (opset 13, float32, dynamic batch axis).")]
        public string Format { get; init; } = "onnx";

        [CommandOption("--out <FILE>"), Description("Where to write the model (default: model.onnx in the current folder); a missing folder is created.")]
        public string Out { get; init; } = "model.onnx";
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        if (s.Format != "onnx") throw new UsageException($"--format {s.Format}: allowed: onnx");
        var checkpoint = s.Resolve(CheckpointUse.Predict);
        var (cfg, weights) = (checkpoint.Config, checkpoint.Weights!);
        OutputFolder.CheckForFile(s.Out, "--out");   // refused before the model is loaded; the folder is made once it loaded
        using var session = checkpoint.Open(Splits.None);
        session.Model.eval();
        var metadata = OnnxExport.Metadata(session.Dataset, cfg.Data.Normalize, session.Model.NumClasses, CheckpointStore.ShaOfFile(weights), ResnetMnist.Data.ClassNames.For(session.Dataset, cfg.Model.NumClasses));
        OutputFolder.ForFile(s.Out, "--out", create: true);
        OnnxExport.Write(session.Model, s.Out, session.Dataset.Height, session.Dataset.Width, ToolInfo.Version, metadata);
        Terminal.Out($"{s.Out}: {session.Arch.Name} ({session.Model.InChannels}×{session.Dataset.Height}×{session.Dataset.Width} input, " +
                          $"{session.Model.NumClasses} classes), ONNX opset {OnnxExport.Opset}, float32, dynamic batch axis; " +
                          $"input 'input' ({(cfg.Data.Normalize ? "ToTensor + Normalize" : "ToTensor: bytes / 255")}), output 'logits'; " +
                          $"metadata: {string.Join(", ", metadata.Keys)}");
        return ErrorHandling.Ok;
    }
}
