using System.ComponentModel;
using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Parity;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

/// <summary>
/// Runs a config through the tool and through the reference PyTorch program and compares them
/// (<see cref="ParityCheck"/>). Exit 0 within the bounds, 1 outside them, 2 when no PyTorch is found or the
/// config cannot be run by the reference.
/// </summary>
sealed class ParityCommand : Command<ParityCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[CONFIG]"), Description("YAML config to check. Without it: the packaged quickstart, as train without a config.")]
        public string? Config { get; init; }

        [CommandOption("--steps <N>"), Description("Training steps to compare (default 20).")]
        public int Steps { get; init; } = 20;

        [CommandOption("--dtype <DTYPE>"), Description("float64 (default: exact parity check) or float32 (first step judged by fixed bounds, later steps and weights against PyTorch's own noise floor: the reference run again with another thread count).")]
        public string Dtype { get; init; } = "float64";

        [CommandOption("--out <DIR>"), Description("Folder for parity.json, parity.md, parity.png. Default: runs/parity-<config name>-<yyyyMMdd-HHmmss>.")]
        public string? Out { get; init; }

        [CommandOption("--python <PATH>"), Description($"Python with torch, torchvision and yaml (default {ReferenceProgram.DefaultPython}).")]
        public string? Python { get; init; }
    }

    /// <summary>The reference program shipped beside the tool (tool package: content reference/resnet_mnist.py).</summary>
    static string ReferenceScript => Path.Combine(AppContext.BaseDirectory, "reference", "resnet_mnist.py");

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        if (s.Steps < 1) throw new UsageException($"--steps {s.Steps}: give at least 1");
        var dtype = ConfigNames.Parse(typeof(DtypeKind), s.Dtype) as DtypeKind?
            ?? throw new UsageException($"--dtype {s.Dtype}: allowed: {string.Join(", ", ConfigNames.Names(typeof(DtypeKind)))}");
        var cfg = ConfigLoader.LoadOrQuickstart(s.Config, s.Set);
        var name = Path.GetFileNameWithoutExtension(s.Config ?? "quickstart");
        if (ParityCheck.Unsupported(cfg) is string why) throw new UsageException($"{s.Config ?? "quickstart"}: {why}");
        ReferenceProgram reference;
        try { reference = ReferenceProgram.Find(ReferenceScript, s.Python); }
        catch (ReferenceUnavailableException e) { throw new UsageException(e.Message); }

        var outDir = ResnetMnist.Outputs.OutputFolder.Claim(s.Out ?? Path.Combine("runs", $"parity-{name}-{DateTime.Now:yyyyMMdd-HHmmss}"),
            ResnetMnist.Outputs.OutputFolder.ParityMarker, "a parity report folder", "--out");
        ParityReport report;
        try
        {
            report = ParityCheck.Run(cfg, s.Steps, dtype, reference, Path.Combine(outDir, "reference"), Terminal.Out);
        }
        catch (ReferenceFailedException e) { throw new ToolFailureException(e.Message); }
        ParityFiles.Write(report, outDir, $"{name}: {ResnetMnist.Outputs.LossPlot.Describe(cfg)}");

        static string F(double v) => v.ToString("0.##E+0", CultureInfo.InvariantCulture);
        Terminal.Out($"initial weights: {report.InitTensors - report.InitTensorsDiffering} of {report.InitTensors} tensors identical");
        Terminal.Out($"layers (first batch), worst relative: {string.Join(", ", report.Layers.Select(kv => $"{kv.Key} {F(kv.Value.MaxRel)}"))}");
        Terminal.Out($"gradients, worst relative: {F(report.GradientsWorstRelativeDifference)} ({report.GradientsWorstParameter})");
        Terminal.Out($"losses, {report.Steps} steps, worst relative: {F(report.WorstRelativeLossDifference)} (step {report.WorstLossStep}); learning rates: {F(report.WorstRelativeLrDifference)}");
        Terminal.Out($"weights after {report.Steps} steps, worst relative: {F(report.FinalWeightsWorstRelativeDifference)} ({report.FinalWeightsWorstTensor})");
        if (report.NoiseFloor is { } noise)
            Terminal.Out($"PyTorch's own noise floor ({noise.Threads} vs {report.Threads} threads): losses up to {F(noise.LossDifferences.DefaultIfEmpty(0).Max())}, " +
                         $"weights {F(noise.FinalWeights)}; allowed: {ParityCheck.NoiseFactor} × that from step 2 on");
        if (report.FewerStepsNote is string fewer) Terminal.Out($"note: {fewer}");
        foreach (var f in report.Failures) Terminal.Out($"outside the bounds: {f}");
        Terminal.Out($"{(report.Passed ? "parity: passed" : "parity: FAILED")} ({report.Dtype}); {Path.Combine(outDir, "parity.md")}");
        return report.Passed ? ErrorHandling.Ok : ErrorHandling.Failure;
    }
}
