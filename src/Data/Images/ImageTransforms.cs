using static TorchSharp.torch;

namespace ResnetMnist.Data.Images;

/// <summary>
/// torchvision 0.14's classification transforms on PIL images, reproduced exactly (torchvision's
/// <c>references/classification/presets.py</c>):
/// evaluation <c>Resize(ResizeSize)</c> then <c>CenterCrop(ImageSize)</c>; training with augmentation
/// <c>RandomResizedCrop(ImageSize)</c> (scale (0.08, 1), ratio (3/4, 4/3)) then <c>RandomHorizontalFlip()</c>, drawing
/// from the GLOBAL generator exactly as torchvision does, per sample, in the order the DataLoader fetches them.
/// Resizing is <see cref="PillowResize"/> (bilinear, Pillow's arithmetic). The result is the HWC bytes that
/// <c>ToTensor</c> then scales.
/// </summary>
/// <param name="ImageSize">The crop's side, in pixels (<c>data.image_size</c>).</param>
/// <param name="ResizeSize">The shorter side after the evaluation resize, in pixels (<c>data.resize_size</c>).</param>
public sealed record ImageTransforms(int ImageSize, int ResizeSize)
{
    /// <summary>
    /// The default <c>resize_size</c> for a crop: <c>int(image_size / 0.875)</c>, the ratio of torchvision's presets
    /// (224 → 256) and timm's default <c>crop_pct</c> 0.875 (it floors too).
    /// </summary>
    public static int DefaultResizeSize(int imageSize) => (int)(imageSize / 0.875);

    /// <summary>The transforms of <c>data.image_size</c> and <c>data.resize_size</c> (null: <see cref="DefaultResizeSize"/>).</summary>
    public static ImageTransforms For(int imageSize, int? resizeSize) => new(imageSize, resizeSize ?? DefaultResizeSize(imageSize));

    /// <summary><c>RandomResizedCrop</c>'s scale range (fraction of the image area).</summary>
    public static readonly (double Min, double Max) Scale = (0.08, 1.0);
    /// <summary><c>RandomResizedCrop</c>'s aspect-ratio range (width / height), as Python floats.</summary>
    public static readonly (double Min, double Max) Ratio = (3.0 / 4.0, 4.0 / 3.0);

    /// <summary>Python's <c>int(round(x))</c>: halves to even.</summary>
    static int PyRound(double x) => (int)Math.Round(x, MidpointRounding.ToEven);

    /// <summary>
    /// torchvision's <c>Resize(size)</c> with an int size: the shorter side becomes <paramref name="size"/>, the longer
    /// <c>int(size * long / short)</c>; an unchanged size returns the image itself.
    /// </summary>
    public static RgbImage ResizeShorter(RgbImage img, int size)
    {
        int w = img.Width, h = img.Height;
        int shortSide = Math.Min(w, h), longSide = Math.Max(w, h);
        int newLong = (int)((double)size * longSide / shortSide);
        var (nw, nh) = w <= h ? (size, newLong) : (newLong, size);
        return (nw, nh) == (w, h) ? img : PillowResize.Resize(img, nw, nh);
    }

    /// <summary>
    /// torchvision's <c>CenterCrop(size)</c>: an image smaller than the crop is first padded with zeros
    /// (left/top get the smaller half); offsets <c>int(round((H - size) / 2.0))</c>, halves to even.
    /// </summary>
    public static RgbImage CenterCrop(RgbImage img, int size)
    {
        if (size > img.Width || size > img.Height)
        {
            int padLeft = size > img.Width ? (size - img.Width) / 2 : 0, padTop = size > img.Height ? (size - img.Height) / 2 : 0;
            int padRight = size > img.Width ? (size - img.Width + 1) / 2 : 0, padBottom = size > img.Height ? (size - img.Height + 1) / 2 : 0;
            img = img.Crop(-padLeft, -padTop, img.Width + padLeft + padRight, img.Height + padTop + padBottom);
            if (img.Width == size && img.Height == size) return img;
        }
        int top = PyRound((img.Height - size) / 2.0), left = PyRound((img.Width - size) / 2.0);
        return img.Crop(left, top, size, size);
    }

    /// <summary>The evaluation transform: <c>Resize(ResizeSize)</c>, <c>CenterCrop(ImageSize)</c>.</summary>
    public RgbImage Eval(RgbImage img) => CenterCrop(ResizeShorter(img, ResizeSize), ImageSize);

    /// <summary>A crop box: top row, left column, height and width, in pixels.</summary>
    public readonly record struct CropBox(int Top, int Left, int Height, int Width);

    /// <summary>
    /// <c>RandomResizedCrop.get_params</c>: ten tries of a scale and a log-uniform aspect ratio, each drawn as a
    /// float32 <c>torch.empty(1).uniform_</c> (the ratio's bounds are <c>torch.log</c> of a float32 tensor, its value
    /// <c>torch.exp</c> in float32); a fitting box then draws its top and left with <c>torch.randint</c>. After ten
    /// misses, a central crop clamped to the ratio range (no draw).
    /// </summary>
    /// <param name="generator">The generator drawn from; null: the global one (torchvision's).</param>
    public static CropBox RandomResizedCropParams(int height, int width, Generator? generator = null)
    {
        double area = (double)height * width;
        double logLo, logHi;
        using (var ratio = tensor(new[] { (float)Ratio.Min, (float)Ratio.Max }))
        using (var logRatio = ratio.log())
        {
            var lr = logRatio.data<float>().ToArray();
            (logLo, logHi) = (lr[0], lr[1]);
        }
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double scale;
            using (var s = empty(1).uniform_(Scale.Min, Scale.Max, generator)) scale = s.item<float>();
            double targetArea = area * scale;
            double aspect;
            using (var r = empty(1).uniform_(logLo, logHi, generator))
            using (var e = r.exp()) aspect = e.item<float>();
            int w = PyRound(Math.Sqrt(targetArea * aspect)), h = PyRound(Math.Sqrt(targetArea / aspect));
            if (0 < w && w <= width && 0 < h && h <= height)
            {
                int i = DrawInt(height - h + 1, generator), j = DrawInt(width - w + 1, generator);
                return new CropBox(i, j, h, w);
            }
        }
        double inRatio = (double)width / height;
        int fw, fh;
        if (inRatio < Ratio.Min) { fw = width; fh = PyRound(fw / Ratio.Min); }
        else if (inRatio > Ratio.Max) { fh = height; fw = PyRound(fh * Ratio.Max); }
        else { fw = width; fh = height; }
        return new CropBox(FloorDiv(height - fh, 2), FloorDiv(width - fw, 2), fh, fw);
    }

    static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);

    static int DrawInt(int high, Generator? generator)
    {
        using var t = randint(0, high, new long[] { 1 }, dtype: ScalarType.Int64, generator: generator);
        return (int)t.item<long>();
    }

    /// <summary><c>RandomHorizontalFlip(0.5)</c>'s draw: <c>torch.rand(1) &lt; 0.5</c>, in float32.</summary>
    /// <param name="generator">The generator drawn from; null: the global one (torchvision's).</param>
    public static bool DrawFlip(Generator? generator = null)
    {
        using var r = rand(1, dtype: ScalarType.Float32, generator: generator);
        return r.item<float>() < 0.5f;
    }

    /// <summary>
    /// The training transform with augmentation: <c>RandomResizedCrop(ImageSize)</c> (crop, then a bilinear resize to
    /// ImageSize × ImageSize unless the crop has that size already), then <c>RandomHorizontalFlip()</c>.
    /// </summary>
    public RgbImage Train(RgbImage img)
    {
        var box = RandomResizedCropParams(img.Height, img.Width);
        return Apply(img, box, DrawFlip());
    }

    /// <summary>The training transform's image work for drawn parameters (no draws): crop, resize, flip.</summary>
    public RgbImage Apply(RgbImage img, CropBox box, bool flip)
    {
        var cropped = img.Crop(box.Left, box.Top, box.Width, box.Height);
        var resized = box.Width == ImageSize && box.Height == ImageSize ? cropped : PillowResize.Resize(cropped, ImageSize, ImageSize);
        return flip ? resized.FlipLeftRight() : resized;
    }

    /// <summary>HWC bytes into <paramref name="chw"/> at <paramref name="offset"/> as C×H×W (ToTensor's layout, before scaling).</summary>
    public static void ToChw(RgbImage img, byte[] chw, long offset)
    {
        long plane = (long)img.Width * img.Height;
        var p = img.Pixels;
        for (long i = 0; i < plane; i++)
        {
            chw[offset + i] = p[3 * i];
            chw[offset + plane + i] = p[3 * i + 1];
            chw[offset + 2 * plane + i] = p[3 * i + 2];
        }
    }
}
