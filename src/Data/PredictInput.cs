using SkiaSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>
/// What <c>predict</c> feeds a model for an image file, prepared as the model's training images were: for MNIST,
/// MNIST's own convention (<see cref="MnistDigit"/>: crop to the ink, fit in 20×20, centre by centre of mass), except
/// that an image of exactly 28×28 is taken as an MNIST image already (as the dataset's files hold them: only inverted
/// where needed); for other datasets the image resized to the dataset's size (<see cref="InputImage"/>). Also writes
/// what the model saw as a PNG.
/// </summary>
public static class PredictInput
{
    /// <summary>1×C×H×W pixels in 0..1 (<c>ToTensor</c>'s scale), before <c>data.normalize</c>.</summary>
    /// <param name="invert">Grey images: true/false, or null = auto (MNIST: decided by the image's border).</param>
    /// <param name="transforms">An image-folder model's evaluation transform (<see cref="InputImage.Load"/>).</param>
    public static Tensor Load(string path, bool? invert, DatasetSpec dataset, Images.ImageTransforms? transforms = null)
    {
        if (dataset != DatasetSpecs.Mnist) return InputImage.Load(path, invert, normalize: false, dataset, transforms);
        var (grey, width, height) = InputImage.DecodeGrey(path);
        if (width == MnistDigit.Side && height == MnistDigit.Side) return InputImage.Load(path, invert, normalize: false, dataset);
        var digit = MnistDigit.Preprocess(grey, width, height, invert)
            ?? throw new DataException($"{path}: no digit found: nothing in the image differs from its border's grey by {MnistDigit.MinContrast * 100:F0}% of the grey range or more");
        return tensor(digit.Select(b => b / 255f).ToArray(), new long[] { 1, 1, MnistDigit.Side, MnistDigit.Side });
    }

    /// <summary><c>data.normalize</c>: (x − mean) / std per channel, the dataset's constants.</summary>
    public static Tensor Normalize(Tensor x, DatasetSpec dataset)
    {
        var shape = new long[] { 1, dataset.Channels, 1, 1 };
        using var mean = tensor(dataset.Mean.Select(m => (float)m).ToArray(), shape);
        using var std = tensor(dataset.Std.Select(v => (float)v).ToArray(), shape);
        return (x - mean) / std;
    }

    /// <summary>
    /// Writes a 1×C×H×W input in 0..1 (grey or RGB) as an 8-bit PNG: for MNIST exactly the bytes the model saw
    /// (its input is bytes / 255), for other datasets rounded to 8 bits.
    /// </summary>
    public static void SavePng(Tensor x, string path)
    {
        int c = (int)x.shape[1], h = (int)x.shape[2], w = (int)x.shape[3];
        var v = x.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        using var bitmap = new SKBitmap(w, h, c == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        static byte B(float f) => (byte)Math.Round(Math.Clamp(f, 0, 1) * 255);
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++)
            {
                int i = y * w + xx;
                bitmap.SetPixel(xx, y, c == 1 ? new SKColor(B(v[i]), B(v[i]), B(v[i])) : new SKColor(B(v[i]), B(v[h * w + i]), B(v[2 * h * w + i])));
            }
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, png.ToArray());
    }
}
