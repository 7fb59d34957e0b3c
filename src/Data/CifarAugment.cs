using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>
/// torchvision's <c>Compose([RandomCrop(size, padding), RandomHorizontalFlip(p)])</c> on uint8 images, draw for draw
/// from the GLOBAL generator as torchvision 0.14 draws inside <c>Dataset.__getitem__</c>: for each sample, in the order
/// the DataLoader fetches them, <c>RandomCrop.forward</c> pads first (constant 0) and then <c>get_params</c> draws
/// <c>i = torch.randint(0, h - th + 1, size=(1,))</c>, then <c>j = torch.randint(0, w - tw + 1, size=(1,))</c> (no draw at
/// all when the padded image already has the crop size), then the flip draws <c>torch.rand(1)</c> and flips when it is
/// &lt; p. The draws are tiny per-sample calls; the image work is one pad and one gather for the whole batch.
/// </summary>
/// <param name="Padding">Zero padding on every side (CIFAR: 4).</param>
/// <param name="FlipP">Probability of a horizontal flip (0.5).</param>
public sealed record CifarAugment(int Padding = 4, double FlipP = 0.5) : IAugmentation
{
    /// <summary>Per-sample parameters: crop offsets in the padded image and whether to flip.</summary>
    public sealed record Draws(long[] Top, long[] Left, bool[] Flip);

    /// <summary>Consumes the generator for <paramref name="count"/> samples of <paramref name="height"/>×<paramref name="width"/> images, in torchvision's order.</summary>
    public Draws Draw(int count, long height, long width)
    {
        var top = new long[count];
        var left = new long[count];
        var flip = new bool[count];
        long ph = height + 2 * Padding, pw = width + 2 * Padding;
        bool crops = ph != height || pw != width;       // get_params returns (0, 0) without drawing when sizes match
        float p = (float)FlipP;
        for (int n = 0; n < count; n++)
        {
            if (crops)
            {
                top[n] = DrawInt(ph - height + 1);
                left[n] = DrawInt(pw - width + 1);
            }
            // torch.rand(1) in PyTorch's default dtype (float32: the reference never changes it), compared with p in float32.
            using var r = rand(1, dtype: ScalarType.Float32);
            flip[n] = r.item<float>() < p;
        }
        return new Draws(top, left, flip);
    }

    static long DrawInt(long high)
    {
        using var t = randint(0, high, new long[] { 1 }, dtype: ScalarType.Int64);
        return t.item<long>();
    }

    /// <summary>Draws for <c>batch.shape[0]</c> samples, in order, and returns the augmented uint8 batch (N×C×H×W).</summary>
    public Tensor Apply(Tensor batch)
    {
        if (batch.dim() != 4) throw new ArgumentException($"expected an N×C×H×W batch, got {batch.dim()} dimensions");
        var draws = Draw((int)batch.shape[0], batch.shape[2], batch.shape[3]);
        return Transform(batch, draws);
    }

    /// <summary>
    /// The image work for given draws, batched: pad once (zeros), then one gather whose indices combine each
    /// sample's crop offset and flip. The number of tensor operations does not depend on the batch size.
    /// </summary>
    public Tensor Transform(Tensor batch, Draws draws)
    {
        long n = batch.shape[0], c = batch.shape[1], h = batch.shape[2], w = batch.shape[3];
        if (draws.Top.Length != n) throw new ArgumentException($"{draws.Top.Length} draws for a batch of {n}");
        using var scope = NewDisposeScope();
        var dev = batch.device;
        long ph = h + 2 * Padding, pw = w + 2 * Padding;
        var padded = Padding == 0 ? batch : nn.functional.pad(batch, new long[] { Padding, Padding, Padding, Padding }, PaddingModes.Constant, 0);
        var top = tensor(draws.Top, device: dev);
        var left = tensor(draws.Left, device: dev);
        var flip = tensor(draws.Flip, device: dev);
        var ys = arange(h, dtype: ScalarType.Int64, device: dev);
        var xs = arange(w, dtype: ScalarType.Int64, device: dev);
        var rows = top.unsqueeze(1) + ys.unsqueeze(0);                                          // N×H
        var colsPlain = left.unsqueeze(1) + xs.unsqueeze(0);                                    // N×W
        var colsFlipped = left.unsqueeze(1) + (w - 1 - xs).unsqueeze(0);
        var cols = where(flip.unsqueeze(1), colsFlipped, colsPlain);
        var index = (rows.unsqueeze(2) * pw + cols.unsqueeze(1)).reshape(n, 1, h * w).expand(n, c, h * w);
        var result = padded.reshape(n, c, ph * pw).gather(2, index).reshape(n, c, h, w);
        return result.MoveToOuterDisposeScope();
    }
}
