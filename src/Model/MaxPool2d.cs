using ResnetMnist.Core;
using static TorchSharp.torch;

namespace ResnetMnist.Model;

/// <summary>
/// PyTorch's <c>nn.MaxPool2d(kernel_size, stride, padding)</c> (torchvision's <c>maxpool</c>: 3, 2, 1), the same values,
/// indices and gradients, with evaluation (no autograd) pooled by libtorch's channels-last kernel on the CPU. libtorch
/// 2.10's kernel for the default (NCHW) layout is scalar: on ResNet-18's 256×64×14×14 stem output it took 14–16 ms in
/// inference (2 threads, AMD EPYC with AVX-512), the channels-last kernel ~0.9 ms on the same values, and with the copy
/// of the input into channels-last order and of the output back to NCHW 2.7–4.3 ms. Both kernels scan each window in
/// the same order and keep the first maximum (or a NaN), so the outputs are bit-identical (<c>MaxPool2dTests</c>). In
/// training the detour gains nothing: its backward (through both copies, and a channels-last gradient into the ReLU
/// and batch norm before it) costs what the forward saves (stem forward + backward 108.8–111.6 ms either way, measured;
/// the gradients bit-identical), so an input that requires grad is pooled as it is, as are one that is channels-last
/// already (<c>model.channels_last</c>), one on another device, or one not 4-D.
/// </summary>
public sealed class MaxPool2d(long kernelSize, long stride, long padding) : TorchSharp.torch.nn.Module<Tensor, Tensor>(nameof(MaxPool2d))
{
    readonly long[] _kernel = [kernelSize, kernelSize], _stride = [stride, stride], _padding = [padding, padding];

    public override Tensor forward(Tensor x)
    {
        if (x.requires_grad || x.dim() != 4 || x.device_type != TorchSharp.DeviceType.CPU || MemoryFormat.SuggestsChannelsLast(x))
            return nn.functional.max_pool2d(x, _kernel, _stride, _padding);
        var channelsLast = MemoryFormat.ToChannelsLast(x);
        try
        {
            using var pooled = nn.functional.max_pool2d(channelsLast, _kernel, _stride, _padding);
            return pooled.contiguous();
        }
        finally
        {
            if (!ReferenceEquals(channelsLast, x)) channelsLast.Dispose();   // x itself where its strides are channels-last already
        }
    }
}
