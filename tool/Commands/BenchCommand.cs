using System.ComponentModel;
using System.Text.Json;
using ResnetMnist.Bench;
using ResnetMnist.Config;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

/// <summary><c>bench</c>: <see cref="Benchmark.Run"/>'s figures as JSON (standard output or <c>--json FILE</c>).</summary>
sealed class BenchCommand : Command<BenchCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<CONFIG>"), Description("YAML config: model, optimizer, data, threads, train.batch_size.")]
        public string Config { get; init; } = "";

        [CommandOption("--mode <MODE>"), Description("steps: train/eval throughput, batch sizes, step breakdown; epoch: load the data + one training epoch; memory: resident memory after each epoch of a short run; data: the data path alone; optimizer: optimizer.step() alone, on the gradients of one batch.")]
        public string Mode { get; init; } = "steps";

        [CommandOption("--warmup <N>"), Description("Untimed steps before each timing. Default 3.")]
        public int Warmup { get; init; } = 3;

        [CommandOption("--steps <N>"), Description("Timed steps. Default 10.")]
        public int Steps { get; init; } = 10;

        [CommandOption("--batch-sizes <LIST>"), Description("Batch sizes for the step-time sweep (comma-separated). Default 16,64,256.")]
        public string BatchSizes { get; init; } = "16,64,256";

        [CommandOption("--per-tensor-optimizer"), Description("Step with TorchSharp's per-tensor SGD/Adam/AdamW instead of the fused flat-buffer update train uses (to measure what the flat update saves).")]
        public bool PerTensorOptimizer { get; init; }

        [CommandOption("--flat-ops-optimizer"), Description("Step with libtorch's operations over the flat buffers instead of the fused one-pass update train uses.")]
        public bool FlatOpsOptimizer { get; init; }

        /// <summary>The optimizer step these options select.</summary>
        public OptimizerStep OptimizerStep =>
            PerTensorOptimizer ? OptimizerStep.PerTensor : FlatOpsOptimizer ? OptimizerStep.Flat : OptimizerStep.Fused;

        [CommandOption("--json <FILE>"), Description("Write the figures here (default: standard output).")]
        public string? Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var cfg = ConfigLoader.Load(s.Config, s.Set);
        var result = Benchmark.Run(cfg, new BenchOptions(s.Mode, s.Warmup, s.Steps, s.BatchSizes, s.OptimizerStep));
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (s.Json is null) Console.WriteLine(json);
        else AtomicFile.WriteAllText(ResnetMnist.Outputs.OutputFolder.ForFile(s.Json, "--json", create: false), json);
        return 0;
    }
}
