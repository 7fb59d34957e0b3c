using ResnetMnist.Native;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace ResnetMnist.Tool.Commands;

sealed class InfoCommand : Command
{
    public override int Execute(CommandContext context, CancellationToken cancellation)
    {
        NativeLoader.EnsureLoaded();
        Console.WriteLine($"resnet-mnist {ToolInfo.Version}");
        Console.WriteLine($"TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, libtorch {__version__}");
        Console.WriteLine($"native bridge: {NativeLoader.Mode}");
        Console.WriteLine($"cpu kernel set: {KernelSet.Current} (ATEN_CPU_CAPABILITY={Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY") ?? "unset"})");
        Console.WriteLine($"threads: {get_num_threads()} (cores: {Environment.ProcessorCount})");
        Console.WriteLine($"cuda: {(cuda.is_available() ? $"available, {cuda.device_count()} device(s)" : "not available")}");
        using var t = ones(2, 2);
        Console.WriteLine($"check: ones(2,2).sum() = {t.sum().item<float>()}");
        return 0;
    }
}
