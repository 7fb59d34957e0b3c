using SkiaSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>Turns a PNG/JPEG image into a model input like the dataset's: 1×C×H×W (bytes / 255; grey images as white digits on black).</summary>
public static class InputImage
{
    /// <summary>Most pixels an image may have (4096 × 4096); checked from its header, before it is decoded.</summary>
    public const long MaxPixels = 4096L * 4096;
    /// <summary>Largest image file accepted.</summary>
    public const long MaxFileBytes = 64L << 20;

    /// <summary>File name extensions of the images a folder given to <see cref="Expand"/> contributes (any case).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// The images named by <paramref name="arguments"/>, in order: a file as given; a folder as its own PNG/JPEG files
    /// (by <see cref="Extensions"/>, sorted by name, ordinal; not its subfolders). A folder without such files is kept
    /// as given, so that reading it reports it.
    /// </summary>
    public static List<string> Expand(IEnumerable<string> arguments)
    {
        var images = new List<string>();
        foreach (var a in arguments)
        {
            if (InputFiles.KindOf(a) != InputFiles.Kind.Directory) { images.Add(a); continue; }
            var inFolder = Directory.EnumerateFiles(a)
                .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal).ToList();
            if (inFolder.Count == 0) images.Add(a); else images.AddRange(inFolder);
        }
        return images;
    }

    /// <summary>Checks what can be checked without decoding: a regular file, size, PNG/JPEG header, pixel count.</summary>
    public static void Check(string path)
    {
        using var data = Read(path);
        using var codec = OpenChecked(path, data);
    }

    static SKData Read(string path)
    {
        var kind = InputFiles.KindOf(path);
        if (kind == InputFiles.Kind.Missing) throw new DataException($"{path}: image not found");
        if (kind == InputFiles.Kind.Directory)
            throw new DataException($"{path}: folder holds no PNG or JPEG image; allowed: files named *{string.Join(", *", Extensions)}");
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

    /// <summary>The whole image as grey values 0..1 (ITU-R 601 luma, as PIL's <c>convert("L")</c>), row-major; NaN where fully transparent.</summary>
    public static (float[] Grey, int Width, int Height) DecodeGrey(string path)
    {
        using var data = Read(path);
        using var codec = OpenChecked(path, data);
        using var bitmap = SKBitmap.Decode(codec) ?? throw new DataException($"{path}: not a PNG or JPEG image this tool can decode (corrupt data)");
        var colours = bitmap.Pixels;
        var grey = new float[colours.Length];
        for (int i = 0; i < grey.Length; i++)
        {
            var px = colours[i];
            grey[i] = px.Alpha == 0 ? float.NaN : (0.299f * px.Red + 0.587f * px.Green + 0.114f * px.Blue) / 255f;
        }
        return (grey, bitmap.Width, bitmap.Height);
    }

    /// <param name="invert">Grey images only: true/false, or null = auto: invert when the image is mostly light (a dark digit on paper).</param>
    /// <param name="dataset">The dataset the model was trained on (channels, image size, normalisation); default MNIST.
    /// 1 channel: grey (ITU-R 601 luma) as MNIST's white-on-black digits; 3 channels: RGB as is, like CIFAR-10's images.</param>
    /// <param name="transforms">An image-folder model's evaluation transform: the image is then read as Pillow reads it
    /// (<see cref="Images.ImageFile"/>) and transformed as the validation images were (Resize, CenterCrop).</param>
    public static Tensor Load(string path, bool? invert = null, bool normalize = false, DatasetSpec? dataset = null,
        Images.ImageTransforms? transforms = null)
    {
        dataset ??= DatasetSpecs.Mnist;
        int h = dataset.Height, w = dataset.Width, c = dataset.Channels;
        if (c is not (1 or 3))
            throw new DataException($"{path}: {dataset.Name} models take {c}-channel images; prediction reads grey (1) or RGB (3) images");
        if (transforms is not null && c == 3)
        {
            var img = transforms.Eval(Images.ImageFile.Read(path));
            var bytes = new byte[3L * img.Width * img.Height];
            Images.ImageTransforms.ToChw(img, bytes, 0);
            using var b = tensor(bytes, new long[] { 1, 3, img.Height, img.Width });
            var x = b.to_type(ScalarType.Float32).div_(255.0f);   // ToTensor, in float32
            return normalize ? Normalized(x, dataset) : x;
        }
        using var data = Read(path);
        using var codec = OpenChecked(path, data);
        using var bitmap = SKBitmap.Decode(codec) ?? throw new DataException($"{path}: not a PNG or JPEG image this tool can decode (corrupt data)");
        using var resized = bitmap.Width == w && bitmap.Height == h ? bitmap.Copy() : bitmap.Resize(new SKImageInfo(w, h), new SKSamplingOptions(SKCubicResampler.Mitchell));
        var pixels = new float[c * h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var px = resized.GetPixel(x, y);
                if (c == 3)
                {
                    // transparent pixels count as black, as when an RGBA image is converted to RGB over a black background
                    float a = px.Alpha / 255f;
                    pixels[0 * h * w + y * w + x] = px.Red * a / 255f;
                    pixels[1 * h * w + y * w + x] = px.Green * a / 255f;
                    pixels[2 * h * w + y * w + x] = px.Blue * a / 255f;
                    continue;
                }
                // ITU-R 601 luma, as PIL's convert("L"); transparent pixels count as background
                float l = (0.299f * px.Red + 0.587f * px.Green + 0.114f * px.Blue) / 255f;
                pixels[y * w + x] = px.Alpha == 0 ? float.NaN : l;
            }
        if (c == 1)
        {
            bool inv = invert ?? pixels.Where(float.IsFinite).DefaultIfEmpty(0).Average() > 0.5;
            for (int i = 0; i < pixels.Length; i++)
            {
                if (float.IsNaN(pixels[i])) pixels[i] = 0;
                else if (inv) pixels[i] = 1 - pixels[i];
            }
        }
        var t = tensor(pixels, new long[] { 1, c, h, w });
        return normalize ? Normalized(t, dataset) : t;
    }

    /// <summary><c>Normalize(mean, std)</c> in float32, in place.</summary>
    static Tensor Normalized(Tensor t, DatasetSpec dataset)
    {
        var shape = new long[] { 1, dataset.Channels, 1, 1 };
        using var mean = tensor(dataset.Mean.Select(m => (float)m).ToArray(), shape);
        using var std = tensor(dataset.Std.Select(v => (float)v).ToArray(), shape);
        return t.sub_(mean).div_(std);
    }
}
