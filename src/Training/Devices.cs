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
        DeviceKind.Cuda => throw new ConfigException(NoCudaAdvice),
        _ => cuda.is_available() ? CUDA : CPU,
    };

    /// <summary>What <c>device: cuda</c> without CUDA says: advice a user of the installed tool can follow.</summary>
    public static string NoCudaAdvice =>
#if TORCH_CUDA
        "device: cuda, but libtorch sees no CUDA device (this build has the CUDA backend: check the NVIDIA driver with nvidia-smi and " +
        "CUDA_VISIBLE_DEVICES); or use device: cpu (--set device=cpu) or device: auto";
#else
        "device: cuda, but this resnet-mnist is the CPU build (the NuGet package carries libtorch for the CPU only), so it never sees a GPU; " +
        "use device: cpu or auto (--set device=cpu); for a GPU, build the tool from its source with the CUDA backend on an NVIDIA Linux " +
        "machine (dotnet pack tool -c Release -p:TorchBackend=cuda, then dotnet tool install from artifacts/packages)";
#endif

    /// <summary>Sets intra-op threads: <paramref name="threads"/> when ≥ 1, else one per core.</summary>
    public static int ApplyThreads(int threads)
    {
        int n = threads >= 1 ? threads : Environment.ProcessorCount;
        set_num_threads(n);
        return n;
    }
}
