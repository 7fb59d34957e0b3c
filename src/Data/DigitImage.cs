using SkiaSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>Turns a PNG/JPEG image into an MNIST-like 1×1×28×28 tensor (grayscale, bytes / 255, white digit on black).</summary>
public static class DigitImage
{
    /// <param name="invert">true/false, or null = auto: invert when the image is mostly light (a dark digit on paper).</param>
    public static Tensor Load(string path, bool? invert = null, bool normalize = false)
    {
        if (!File.Exists(path)) throw new DataException($"{path}: image not found");
        using var bitmap = SKBitmap.Decode(path) ?? throw new DataException($"{path}: not a PNG or JPEG image this tool can decode");
        using var resized = bitmap.Width == 28 && bitmap.Height == 28 ? bitmap.Copy() : bitmap.Resize(new SKImageInfo(28, 28), new SKSamplingOptions(SKCubicResampler.Mitchell));
        var gray = new float[28 * 28];
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
            {
                var c = resized.GetPixel(x, y);
                // ITU-R 601 luma, as PIL's convert("L"); transparent pixels count as background
                float l = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
                gray[y * 28 + x] = c.Alpha == 0 ? float.NaN : l;
            }
        bool inv = invert ?? gray.Where(float.IsFinite).DefaultIfEmpty(0).Average() > 0.5;
        for (int i = 0; i < gray.Length; i++)
        {
            if (float.IsNaN(gray[i])) gray[i] = 0;
            else if (inv) gray[i] = 1 - gray[i];
        }
        var t = tensor(gray, new long[] { 1, 1, 28, 28 });
        return normalize ? t.sub_(MnistDataset.NormMean).div_(MnistDataset.NormStd) : t;
    }
}
