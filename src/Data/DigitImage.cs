using SkiaSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>Turns a PNG/JPEG image into a model input like the dataset's: 1×1×H×W (grayscale, bytes / 255, white digit on black).</summary>
public static class DigitImage
{
    /// <summary>Most pixels an image may have (4096 × 4096); checked from its header, before it is decoded.</summary>
    public const long MaxPixels = 4096L * 4096;
    /// <summary>Largest image file accepted.</summary>
    public const long MaxFileBytes = 64L << 20;

    /// <summary>Checks what can be checked without decoding: a regular file, size, PNG/JPEG header, pixel count.</summary>
    public static void Check(string path)
    {
        using var data = Read(path);
        using var codec = OpenChecked(path, data);
    }

    static SKData Read(string path)
    {
        if (InputFiles.KindOf(path) == InputFiles.Kind.Missing) throw new DataException($"{path}: image not found");
        var bytes = InputFiles.ReadAllBytes(path, "a PNG or JPEG image", MaxFileBytes, m => new DataException($"{path}: {m}"));
        return SKData.CreateCopy(bytes);
    }

    static SKCodec OpenChecked(string path, SKData data)
    {
        var codec = SKCodec.Create(data) ?? throw new DataException($"{path}: not a PNG or JPEG image this tool can decode");
        try
        {
            if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
                throw new DataException($"{path}: is a {codec.EncodedFormat} image; allowed: PNG or JPEG");
            long pixels = (long)codec.Info.Width * codec.Info.Height;
            if (codec.Info.Width <= 0 || codec.Info.Height <= 0 || pixels > MaxPixels)
                throw new DataException($"{path}: image is {codec.Info.Width}×{codec.Info.Height} ({pixels} pixels); allowed: at most {MaxPixels} pixels (4096×4096)");
            return codec;
        }
        catch { codec.Dispose(); throw; }
    }

    /// <param name="invert">true/false, or null = auto: invert when the image is mostly light (a dark digit on paper).</param>
    /// <param name="dataset">The dataset the model was trained on (image size, normalisation); default MNIST.</param>
    public static Tensor Load(string path, bool? invert = null, bool normalize = false, DatasetSpec? dataset = null)
    {
        dataset ??= DatasetSpecs.Mnist;
        if (dataset.Channels != 1)
            throw new DataException($"{path}: {dataset.Name} models take {dataset.Channels}-channel images; prediction reads grey images only");
        int h = dataset.Height, w = dataset.Width;
        using var data = Read(path);
        using var codec = OpenChecked(path, data);
        using var bitmap = SKBitmap.Decode(codec) ?? throw new DataException($"{path}: not a PNG or JPEG image this tool can decode (corrupt data)");
        using var resized = bitmap.Width == w && bitmap.Height == h ? bitmap.Copy() : bitmap.Resize(new SKImageInfo(w, h), new SKSamplingOptions(SKCubicResampler.Mitchell));
        var gray = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var c = resized.GetPixel(x, y);
                // ITU-R 601 luma, as PIL's convert("L"); transparent pixels count as background
                float l = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
                gray[y * w + x] = c.Alpha == 0 ? float.NaN : l;
            }
        bool inv = invert ?? gray.Where(float.IsFinite).DefaultIfEmpty(0).Average() > 0.5;
        for (int i = 0; i < gray.Length; i++)
        {
            if (float.IsNaN(gray[i])) gray[i] = 0;
            else if (inv) gray[i] = 1 - gray[i];
        }
        var t = tensor(gray, new long[] { 1, 1, h, w });
        return normalize ? t.sub_(dataset.Mean[0]).div_(dataset.Std[0]) : t;
    }
}
