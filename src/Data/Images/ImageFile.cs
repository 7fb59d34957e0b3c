namespace ResnetMnist.Data.Images;

/// <summary>
/// The one image reader of the tool (datasets of image files, <c>predict</c>): reads a PNG or JPEG file through the
/// checked reader (<see cref="InputFiles"/>, at most <see cref="MaxFileBytes"/>), checks its pixel count from the
/// header before decoding, and decodes it as Pillow's <c>Image.open(f).convert('RGB')</c> does
/// (<see cref="PngDecoder"/>, <see cref="JpegDecoder"/>). Anything else is refused with one line naming the file.
/// </summary>
public static class ImageFile
{
    /// <summary>Most pixels an image may have (4096 × 4096); checked from its header, before it is decoded.</summary>
    public const long MaxPixels = 4096L * 4096;
    /// <summary>Largest image file accepted.</summary>
    public const long MaxFileBytes = 64L << 20;

    /// <summary>The formats read, by their first bytes.</summary>
    public enum Format { Png, Jpeg }

    /// <summary>The format of a file's first bytes, or null.</summary>
    public static Format? Sniff(ReadOnlySpan<byte> data) =>
        data.StartsWith(PngDecoder.Signature) ? Format.Png
        : data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF ? Format.Jpeg
        : null;

    /// <summary>Reads the file's bytes (checked: a regular file, at most <see cref="MaxFileBytes"/>) and its format.</summary>
    static (byte[] Data, Format Format) ReadBytes(string path)
    {
        var kind = InputFiles.KindOf(path);
        if (kind == InputFiles.Kind.Missing) throw new DataException($"{path}: image not found");
        var data = InputFiles.ReadAllBytes(path, "a PNG or JPEG image", MaxFileBytes, m => new DataException($"{path}: {m}"));
        var format = Sniff(data) ?? throw new DataException($"{path}: not a PNG or JPEG image (unknown file signature); allowed: PNG or JPEG files");
        return (data, format);
    }

    /// <summary>Refuses an image larger than <paramref name="maxPixels"/>.</summary>
    public static void CheckPixels(string path, int width, int height, long maxPixels)
    {
        long pixels = (long)width * height;
        if (width <= 0 || height <= 0 || pixels > maxPixels)
            throw new DataException($"{path}: image is {width}×{height} ({pixels} pixels); allowed: at most {maxPixels} pixels");
    }

    /// <summary>Width and height from the file's header (checked as <see cref="Read"/> checks them), without decoding.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        var (data, format) = ReadBytes(path);
        var size = format == Format.Png ? PngDecoder.ReadSize(data, path) : JpegDecoder.ReadSize(data, path);
        CheckPixels(path, size.Width, size.Height, MaxPixels);
        return size;
    }

    /// <summary>Decodes the image at <paramref name="path"/> to RGB as Pillow's <c>convert('RGB')</c> does.</summary>
    public static RgbImage Read(string path)
    {
        var (data, format) = ReadBytes(path);
        return format == Format.Png ? PngDecoder.Decode(data, path, MaxPixels) : JpegDecoder.Decode(data, path, MaxPixels);
    }
}
