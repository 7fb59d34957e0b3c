namespace ResnetMnist.Data;

/// <summary>
/// A photo or scan of one digit made into a 28×28 image as MNIST's own were made (LeCun et al.: "size normalized to fit
/// in a 20x20 pixel box while preserving their aspect ratio ... centered in a 28x28 image by computing the center of
/// mass of the pixels"): ink made white on black, cropped to the ink, fitted into 20×20 keeping the aspect ratio, and
/// shifted so that its centre of mass is at pixel (14, 14). Works on a decoded grey image (values 0..1), so that any
/// image reader can feed it.
/// </summary>
public static class MnistDigit
{
    /// <summary>Side of the output image.</summary>
    public const int Side = 28;
    /// <summary>Side of the box the digit is fitted into.</summary>
    public const int Box = 20;
    /// <summary>
    /// Where the centre of mass goes, in pixel indices (row and column). Measured on the 1,000 MNIST test digits
    /// packaged with the tool: mean centre of mass 13.997 (row), 14.006 (column), std 0.29.
    /// </summary>
    public const double Centre = 14;
    /// <summary>
    /// Ink: a pixel at least half-way from the background level to the strongest ink (after levelling, ≥ 0.5). MNIST's
    /// own digits cropped at that level (byte ≥ 128) have a longer side of 19.98 pixels on average (2,000 test digits):
    /// the crop is the box the digit was fitted to.
    /// </summary>
    public const float InkThreshold = 0.5f;
    /// <summary>Least difference between the strongest ink and the background (of the 0..1 grey range) for a digit to be found.</summary>
    public const float MinContrast = 0.1f;

    /// <summary>
    /// Ink is dark on a light background (a pen on paper) when the border's median grey is above 0.5; such images are
    /// inverted (MNIST digits are white on black). The border: the outermost row and column on each side.
    /// </summary>
    public static bool IsDarkOnLight(float[] grey, int width, int height) => BorderMedian(grey, width, height) > 0.5f;

    /// <summary>
    /// The 28×28 digit (bytes, row-major, white ink on black, as MNIST's files hold them), or null when the image holds
    /// nothing that stands out from its background by <see cref="MinContrast"/>.
    /// </summary>
    /// <param name="grey">width × height grey values in 0..1, row-major; NaN = transparent (counted as background).</param>
    /// <param name="invert">true: dark ink on light; false: light ink on dark; null: decided by <see cref="IsDarkOnLight"/>.</param>
    public static byte[]? Preprocess(float[] grey, int width, int height, bool? invert = null)
    {
        if (grey.Length != (long)width * height) throw new ArgumentException($"{grey.Length} values for {width}×{height}");
        bool inv = invert ?? IsDarkOnLight(grey, width, height);
        // Levelled: background 0, strongest ink 1 (a photo's paper is not white, its pen not black).
        var v = new float[grey.Length];
        float border = BorderMedian(grey, width, height);
        float background = inv ? 1 - border : border;
        float ink = float.MinValue;
        for (int i = 0; i < v.Length; i++)
        {
            float g = float.IsNaN(grey[i]) ? background : inv ? 1 - grey[i] : grey[i];
            v[i] = g;
            ink = Math.Max(ink, g);
        }
        if (!(ink - background >= MinContrast)) return null;
        float range = ink - background;
        int top = height, bottom = -1, left = width, right = -1;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                float l = Math.Clamp((v[y * width + x] - background) / range, 0, 1);
                v[y * width + x] = l;
                if (l < InkThreshold) continue;
                top = Math.Min(top, y); bottom = Math.Max(bottom, y);
                left = Math.Min(left, x); right = Math.Max(right, x);
            }
        int cw = right - left + 1, ch = bottom - top + 1;
        var crop = new float[cw * ch];
        for (int y = 0; y < ch; y++) Array.Copy(v, (top + y) * width + left, crop, y * cw, cw);

        // Fit into 20×20, the longer side 20, keeping the aspect ratio.
        double scale = (double)Box / Math.Max(cw, ch);
        int dw = Math.Clamp((int)Math.Round(cw * scale), 1, Box), dh = Math.Clamp((int)Math.Round(ch * scale), 1, Box);
        var fitted = Resample.Bilinear(crop, cw, ch, dw, dh);

        // Centre of mass of the fitted digit, then placed so that it lands on (Centre, Centre).
        double mass = 0, my = 0, mx = 0;
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
            {
                double m = fitted[y * dw + x];
                mass += m; my += m * y; mx += m * x;
            }
        int offY = (int)Math.Round(Centre - (mass > 0 ? my / mass : (dh - 1) / 2.0));
        int offX = (int)Math.Round(Centre - (mass > 0 ? mx / mass : (dw - 1) / 2.0));
        var output = new byte[Side * Side];
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
            {
                int oy = y + offY, ox = x + offX;
                if (oy is < 0 or >= Side || ox is < 0 or >= Side) continue; // a lopsided digit's far edge can leave the field, as in MNIST
                output[oy * Side + ox] = (byte)Math.Round(Math.Clamp(fitted[y * dw + x], 0, 1) * 255);
            }
        return output;
    }

    static float BorderMedian(float[] grey, int width, int height)
    {
        var border = new List<float>(2 * (width + height));
        for (int x = 0; x < width; x++) { border.Add(grey[x]); if (height > 1) border.Add(grey[(height - 1) * width + x]); }
        for (int y = 1; y < height - 1; y++) { border.Add(grey[y * width]); if (width > 1) border.Add(grey[y * width + width - 1]); }
        var known = border.Where(g => !float.IsNaN(g)).Order().ToList();
        return known.Count == 0 ? 0 : known[known.Count / 2]; // an all-transparent border: a dark background
    }
}

/// <summary>Resampling of grey float images.</summary>
public static class Resample
{
    /// <summary>
    /// Separable triangle (bilinear) filter whose support widens with the reduction (antialiasing when shrinking), as
    /// Pillow's <c>Image.resize(..., BILINEAR)</c> does; here in floating point, on values 0..1. Horizontal pass first.
    /// </summary>
    public static float[] Bilinear(float[] src, int sw, int sh, int dw, int dh)
    {
        var rows = new float[dw * sh];
        var (xb, xw) = Weights(sw, dw);
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < dw; x++)
            {
                double s = 0;
                for (int k = 0; k < xw[x].Length; k++) s += xw[x][k] * src[y * sw + xb[x] + k];
                rows[y * dw + x] = (float)s;
            }
        var dst = new float[dw * dh];
        var (yb, yw) = Weights(sh, dh);
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
            {
                double s = 0;
                for (int k = 0; k < yw[y].Length; k++) s += yw[y][k] * rows[(yb[y] + k) * dw + x];
                dst[y * dw + x] = (float)s;
            }
        return dst;
    }

    /// <summary>For each output index: the first input index it reads and its normalised weights.</summary>
    static (int[] First, double[][] Weights) Weights(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1), support = filterScale; // triangle: radius 1
        var first = new int[outSize];
        var weights = new double[outSize][];
        for (int i = 0; i < outSize; i++)
        {
            double centre = (i + 0.5) * scale;
            int min = Math.Max(0, (int)(centre - support + 0.5)), max = Math.Min(inSize, (int)(centre + support + 0.5));
            if (max <= min) (min, max) = (Math.Min((int)centre, inSize - 1), Math.Min((int)centre, inSize - 1) + 1);
            var w = new double[max - min];
            double total = 0;
            for (int j = 0; j < w.Length; j++)
            {
                double d = Math.Abs((min + j + 0.5 - centre) / filterScale);
                w[j] = d < 1 ? 1 - d : 0;
                total += w[j];
            }
            if (total == 0) { w[Math.Clamp((int)centre - min, 0, w.Length - 1)] = 1; total = 1; }
            for (int j = 0; j < w.Length; j++) w[j] /= total;
            (first[i], weights[i]) = (min, w);
        }
        return (first, weights);
    }
}
