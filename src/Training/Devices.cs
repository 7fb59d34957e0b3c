using ResnetMnist.Config;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>Turns <c>device</c> and <c>threads</c> into torch settings.</summary>
public static class Devices
{
    /// <summary>auto → CUDA when TorchSharp reports it, else CPU; cuda without CUDA is an error saying how to get it.</summary>
    public static Device Resolve(DeviceKind device) => device switch
    {
        DeviceKind.Cpu => CPU,
        DeviceKind.Cuda when cuda.is_available() => CUDA,
        DeviceKind.Cuda => throw new ConfigException(
            "device: cuda, but TorchSharp reports no CUDA device; on an NVIDIA machine build with the CUDA backend " +
            "(dotnet build -p:TorchBackend=cuda), or set device: cpu"),
        _ => cuda.is_available() ? CUDA : CPU,
    };

    /// <summary>Sets intra-op threads: <paramref name="threads"/> when ≥ 1, else one per core.</summary>
    public static int ApplyThreads(int threads)
    {
        int n = threads >= 1 ? threads : Environment.ProcessorCount;
        set_num_threads(n);
        return n;
    }
}
