using NUnit.Framework;
using ResnetMnist.Core;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// The model's <c>maxpool</c> (<see cref="ResnetMnist.Model.MaxPool2d"/>, pooled in channels-last order on the CPU where
/// no gradient is recorded) gives exactly what libtorch's <c>max_pool2d</c> gives on the NCHW tensor, as PyTorch's
/// <c>nn.MaxPool2d</c> runs it: the output (in inference mode, under no_grad and with autograd) and the input gradient bit for bit, on inputs full of ties (ReLU'd and rounded values: the first maximum of a
/// window must win, as the gradient goes to it), with a NaN and −∞, in float32 and float64, for ResNet's stem shape and
/// for shapes with size-1 dimensions, odd sizes and a single image; and its output is NCHW-contiguous.
/// </summary>
[TestFixture, Category("Parity")]
public sealed class MaxPool2dTests
{
    static IEnumerable<TestCaseData> Cases()
    {
        long[][] shapes = [[16, 64, 14, 14], [1, 64, 15, 9], [3, 1, 7, 7], [2, 5, 1, 1], [2, 3, 1, 6], [4, 8, 2, 3]];
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            foreach (var shape in shapes)
                yield return new TestCaseData(dtype, shape).SetArgDisplayNames(dtype.ToString(), string.Join("x", shape));
    }

    [TestCaseSource(nameof(Cases))]
    public void Output_and_gradient_are_libtorchs_NCHW_max_pool_bit_for_bit(ScalarType dtype, long[] shape)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var pool = new ResnetMnist.Model.MaxPool2d(kernelSize: 3, stride: 2, padding: 1);
        var values = nn.functional.relu(randn(shape, dtype: dtype)).mul_(2).round_();   // 0, 1, 2, ...: many ties
        var flat = values.view(-1);
        flat[0] = double.NaN;
        if (flat.numel() > 5) flat[5] = double.NegativeInfinity;

        var a = values.clone().requires_grad_(true);
        var b = values.clone().requires_grad_(true);
        var expected = nn.functional.max_pool2d(a, [3, 3], [2, 2], [1, 1]);
        var actual = pool.call(b);
        Assert.That(actual.shape, Is.EqualTo(expected.shape));
        Assert.That(actual.is_contiguous(), Is.True, "the output is NCHW-contiguous, as the next layer expects");
        Assert.That(Bytes(actual), Is.EqualTo(Bytes(expected)), "output");

        var upstream = randn(expected.shape, dtype: dtype);
        var ga = autograd.grad([expected], [a], [upstream])[0];
        var gb = autograd.grad([actual], [b], [upstream])[0];
        Assert.That(Bytes(gb), Is.EqualTo(Bytes(ga)), "input gradient");

        using (inference_mode())
        {
            var pooled = pool.call(values);
            Assert.That(pooled.is_contiguous(), Is.True, "inference: NCHW-contiguous");
            Assert.That(Bytes(pooled), Is.EqualTo(Bytes(nn.functional.max_pool2d(values, [3, 3], [2, 2], [1, 1]))), "inference");
        }
        using (no_grad())
            Assert.That(Bytes(pool.call(values)), Is.EqualTo(Bytes(nn.functional.max_pool2d(values, [3, 3], [2, 2], [1, 1]))), "no_grad");
    }

    [Test]
    public void A_channels_last_input_is_pooled_as_it_is()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var pool = new ResnetMnist.Model.MaxPool2d(kernelSize: 3, stride: 2, padding: 1);
        var x = MemoryFormat.ToChannelsLast(nn.functional.relu(randn(4, 16, 10, 10)).round_());
        var y = pool.call(x);
        Assert.That(MemoryFormat.IsChannelsLast(y), Is.True, "channels-last in, channels-last out (model.channels_last)");
        Assert.That(Bytes(y.contiguous()), Is.EqualTo(Bytes(nn.functional.max_pool2d(x.contiguous(), [3, 3], [2, 2], [1, 1]))));
    }

    static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }
}
