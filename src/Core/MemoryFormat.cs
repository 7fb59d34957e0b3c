using static TorchSharp.torch;

namespace ResnetMnist.Core;

/// <summary>
/// Channels-last (NHWC in memory, shape still N×C×H×W) without a memory-format API: TorchSharp 0.107 has no
/// <c>memory_format</c> argument, so a tensor is copied into storage allocated with exactly the strides PyTorch's
/// <c>.to(memory_format=torch.channels_last)</c> gives, <c>(C·H·W, 1, W·C, C)</c>. libtorch's convolutions and batch
/// norm pick their kernels from the strides (c10's <c>suggest_memory_format</c>), so only those exact strides count:
/// a permute to NHWC, <c>contiguous()</c> and the inverse permute leave a tensor with one channel (the MNIST input,
/// <c>conv1</c>'s 64×1×7×7 weight) or a 1×1 kernel (the downsample weights) as it was, because <c>contiguous()</c>
/// ignores the strides of size-1 dimensions and returns it unchanged, and then <c>conv1</c>, <c>bn1</c>,
/// <c>maxpool</c> and the first block's identity path ran in NCHW.
/// </summary>
public static class MemoryFormat
{
    /// <summary>PyTorch's channels-last strides of an N×C×H×W shape: <c>(C·H·W, 1, W·C, C)</c>.</summary>
    public static long[] ChannelsLastStrides(long[] shape) =>
        [shape[1] * shape[2] * shape[3], 1, shape[3] * shape[1], shape[1]];

    /// <summary>A copy of a 4-D tensor with <see cref="ChannelsLastStrides"/> (other ranks, and tensors that have
    /// them already, are returned as they are). The values are the same; only their order in memory changes.</summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.dim() != 4 || x.stride().SequenceEqual(ChannelsLastStrides(x.shape))) return x;
        var y = empty_strided(x.shape, ChannelsLastStrides(x.shape), x.dtype, x.device);
        using (no_grad()) y.copy_(x);
        return y;
    }

    /// <summary>
    /// Whether libtorch treats <paramref name="x"/> (4-D) as channels-last, i.e. whether PyTorch's
    /// <c>x.suggest_memory_format()</c> would be <c>torch.channels_last</c>: c10's <c>is_channels_last_strides_2d</c>,
    /// which orders the dimensions by stride (C, W, H, N) and falls back to NCHW where size-1 dimensions make the
    /// strides ambiguous. This is what decides the layout of convolution, batch norm and pooling outputs.
    /// </summary>
    public static bool SuggestsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var sizes = x.shape;
        var strides = x.stride();
        if (strides[1] == 0) return false;
        long min = 0;
        foreach (var d in new[] { 1, 3, 2, 0 })
        {
            if (sizes[d] == 0 || strides[d] < min) return false;
            if (d == 0 && min == strides[1]) return false;
            min = strides[d];
            if (sizes[d] > 1) min *= sizes[d];
        }
        return true;
    }

    /// <summary>Whether <paramref name="x"/> (4-D) is dense in channels-last order: PyTorch's
    /// <c>x.is_contiguous(memory_format=torch.channels_last)</c> (strides of size-1 dimensions are not looked at).</summary>
    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var sizes = x.shape;
        var strides = x.stride();
        long expected = 1;
        foreach (var d in new[] { 1, 3, 2, 0 })
        {
            if (sizes[d] == 1) continue;
            if (strides[d] != expected) return false;
            expected *= sizes[d];
        }
        return true;
    }

    /// <summary>A standalone copy with the standard (row-major) strides, for files, which record strides and storage
    /// offsets: <c>contiguous()</c> and <c>clone()</c> both keep the channels-last strides of size-1 dimensions (and
    /// <c>contiguous()</c> a slice's offset into its buffer), which PyTorch would then read back as they are.</summary>
    public static Tensor StandardCopy(Tensor x)
    {
        var y = empty(x.shape, x.dtype, x.device);
        using (no_grad()) y.copy_(x);
        return y;
    }

    /// <summary>Whether <paramref name="x"/> has the standard strides and starts at its storage's beginning (what
    /// <see cref="StandardCopy"/> returns).</summary>
    public static bool IsStandalone(Tensor x) => x.storage_offset() == 0 && x.stride().SequenceEqual(StandardStrides(x.shape));

    /// <summary>Row-major strides of <paramref name="shape"/>.</summary>
    public static long[] StandardStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { strides[d] = s; s *= Math.Max(1, shape[d]); }
        return strides;
    }

    /// <summary>Re-lays every 4-D parameter (the convolution weights) of <paramref name="model"/> in place with
    /// <see cref="ChannelsLastStrides"/>, keeping the same parameter objects (optimizers and hooks still see them).</summary>
    public static void ToChannelsLast(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var p in model.parameters())
        {
            if (p.dim() != 4 || p.stride().SequenceEqual(ChannelsLastStrides(p.shape))) continue;
            using var cl = ToChannelsLast((Tensor)p);
            p.set_(cl);
        }
    }
}
