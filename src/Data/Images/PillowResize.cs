namespace ResnetMnist.Data.Images;

/// <summary>
/// Pillow 9.4's <c>img.resize((width, height), Image.BILINEAR)</c> for 8-bit RGB images, arithmetic for arithmetic
/// (libImaging/Resample.c): a separable triangle filter whose support is scaled by the reduction factor (so shrinking
/// averages every source pixel, "antialiasing"); per output pixel, weights computed in double, normalised to sum 1,
/// converted to fixed point with <see cref="PrecisionBits"/> = 32 − 8 − 2 (rounded half away from zero), summed in
/// 32-bit integers from a rounding bias of 2^(bits−1), shifted back and clipped to 0..255. The horizontal pass runs
/// first, into an 8-bit intermediate image, then the vertical pass; a pass whose size does not change is skipped, and
/// an unchanged size returns a copy, as Pillow does.
/// </summary>
public static class PillowResize
{
    /// <summary>Fixed-point fraction bits of the 8-bit coefficients (Pillow's <c>PRECISION_BITS</c>).</summary>
    public const int PrecisionBits = 32 - 8 - 2;

    /// <summary>The bilinear (triangle) filter and its support, 1 source pixel.</summary>
    static double Bilinear(double x)
    {
        if (x < 0) x = -x;
        return x < 1 ? 1 - x : 0;
    }

    /// <summary>Per output pixel: first source pixel, number of source pixels, and their fixed-point weights.</summary>
    sealed record Coefficients(int[] First, int[] Count, int[] Weights, int KernelSize);

    /// <summary>Pillow's <c>precompute_coeffs</c> for the box <paramref name="in0"/>..<paramref name="in1"/> of an axis of <paramref name="inSize"/> pixels, then <c>normalize_coeffs_8bpc</c>.</summary>
    static Coefficients Precompute(int inSize, float in0, float in1, int outSize)
    {
        double scale = (double)(in1 - in0) / outSize, filterScale = Math.Max(scale, 1.0);
        double support = 1.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var first = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = in0 + (xx + 0.5) * scale, ww = 0, ss = 1.0 / filterScale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Bilinear((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                if (ww != 0.0) k[x] /= ww;
                double v = k[x] * (1 << PrecisionBits);
                weights[xx * ksize + x] = v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            first[xx] = xmin;
            count[xx] = xmax;
        }
        return new Coefficients(first, count, weights, ksize);
    }

    static byte Clip8(int v) =>
        v >= (1 << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);

    /// <summary>Resizes <paramref name="image"/> to <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"resize to {width}×{height}");
        if (width == image.Width && height == image.Height) return new RgbImage(width, height, (byte[])image.Pixels.Clone());
        var result = image;
        if (width != image.Width) result = Horizontal(result, width, Precompute(image.Width, 0, image.Width, width));
        if (height != image.Height) result = Vertical(result, height, Precompute(image.Height, 0, image.Height, height));
        return result;
    }

    static RgbImage Horizontal(RgbImage src, int width, Coefficients c)
    {
        var dst = new RgbImage(width, src.Height);
        byte[] s = src.Pixels, d = dst.Pixels;
        const int half = 1 << (PrecisionBits - 1);
        for (int y = 0; y < src.Height; y++)
        {
            long row = (long)y * src.Width * 3;
            for (int xx = 0; xx < width; xx++)
            {
                int s0 = half, s1 = half, s2 = half, k0 = xx * c.KernelSize;
                long p = row + (long)c.First[xx] * 3;
                for (int x = 0; x < c.Count[xx]; x++, p += 3)
                {
                    int k = c.Weights[k0 + x];
                    s0 += s[p] * k; s1 += s[p + 1] * k; s2 += s[p + 2] * k;
                }
                long o = ((long)y * width + xx) * 3;
                d[o] = Clip8(s0); d[o + 1] = Clip8(s1); d[o + 2] = Clip8(s2);
            }
        }
        return dst;
    }

    static RgbImage Vertical(RgbImage src, int height, Coefficients c)
    {
        var dst = new RgbImage(src.Width, height);
        byte[] s = src.Pixels, d = dst.Pixels;
        const int half = 1 << (PrecisionBits - 1);
        long stride = (long)src.Width * 3;
        for (int yy = 0; yy < height; yy++)
        {
            int k0 = yy * c.KernelSize;
            for (int xx = 0; xx < src.Width; xx++)
            {
                int s0 = half, s1 = half, s2 = half;
                long p = (long)c.First[yy] * stride + (long)xx * 3;
                for (int y = 0; y < c.Count[yy]; y++, p += stride)
                {
                    int k = c.Weights[k0 + y];
                    s0 += s[p] * k; s1 += s[p + 1] * k; s2 += s[p + 2] * k;
                }
                long o = ((long)yy * src.Width + xx) * 3;
                d[o] = Clip8(s0); d[o + 1] = Clip8(s1); d[o + 2] = Clip8(s2);
            }
        }
        return dst;
    }
}
