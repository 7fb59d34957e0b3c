using static TorchSharp.torch;

namespace ResnetMnist.Core;

/// <summary>
/// Channels-last (NHWC in memory, shape still N×C×H×W) without a memory-format API: TorchSharp 0.107 has no
/// <c>memory_format</c> argument, but a permute to NHWC, <c>contiguous()</c> and the inverse permute give exactly the
/// strides PyTorch's <c>.to(memory_format=torch.channels_last)</c> gives, and libtorch's convolutions pick their
/// kernels from the strides.
/// </summary>
public static class MemoryFormat
{
    /// <summary>A channels-last copy of a 4-D tensor (other ranks are returned as they are).</summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return x;
        using var nhwc = x.permute(0, 2, 3, 1);
        using var packed = nhwc.contiguous();
        return packed.permute(0, 3, 1, 2);
    }

    /// <summary>Whether <paramref name="x"/> (4-D) has channels-last strides.</summary>
    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var s = x.stride();
        var n = x.shape;
        return s[1] == 1 && s[3] == n[1] && s[2] == n[1] * n[3];
    }

    /// <summary>Re-lays every 4-D parameter (the convolution weights) of <paramref name="model"/> in place, keeping the same parameter objects (optimizers and hooks still see them).</summary>
    public static void ToChannelsLast(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var p in model.parameters())
        {
            if (p.dim() != 4) continue;
            using var cl = ToChannelsLast((Tensor)p);
            p.set_(cl);
        }
    }
}
