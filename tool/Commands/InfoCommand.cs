using System.ComponentModel;
using ResnetMnist.Native;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace ResnetMnist.Tool.Commands;

sealed class InfoCommand : Command<InfoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--json"), Description("Print one JSON document on stdout and nothing else.")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        NativeLoader.EnsureLoaded();
        if (s.Json)
        {
            using var one = ones(2, 2);
            Console.WriteLine(ResnetMnist.Outputs.RunDirectory.SummaryJson(new
            {
                Version = ToolInfo.Version,
                Torchsharp = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
                Libtorch = __version__,
                NativeBridge = NativeLoader.Mode.ToString(),
                CpuKernelSet = KernelSet.Current.ToString(),
                AtenCpuCapability = Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY"),
                Threads = get_num_threads(),
                ThreadWaitPolicy = NativeLoader.WaitPolicy,
                Malloc = NativeHeap.Description,
                Cores = Environment.ProcessorCount,
                CudaAvailable = cuda.is_available(),
                CudaDevices = cuda.is_available() ? cuda.device_count() : 0,
                Check = (double)one.sum().item<float>(),
            }));
            return 0;
        }
        Terminal.Out($"resnet-mnist {ToolInfo.Version}");
        Terminal.Out($"TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, libtorch {__version__}");
        Terminal.Out($"native bridge: {NativeLoader.Mode}");
        Terminal.Out($"cpu kernel set: {KernelSet.Current} (ATEN_CPU_CAPABILITY={Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY") ?? "unset"})");
        Terminal.Out($"threads: {get_num_threads()} (cores: {Environment.ProcessorCount}); waiting threads: {NativeLoader.WaitPolicy}");
        Terminal.Out($"malloc: {NativeHeap.Description}");
        Terminal.Out($"cuda: {(cuda.is_available() ? $"available, {cuda.device_count()} device(s)" : "not available")}");
        using var t = ones(2, 2);
        Terminal.Out($"check: ones(2,2).sum() = {t.sum().item<float>()}");
        return 0;
    }
}
