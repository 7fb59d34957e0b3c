namespace ResnetMnist.Data.Images;

/// <summary>
/// An 8-bit RGB image as PIL holds one after <c>convert('RGB')</c>: <see cref="Pixels"/> is row-major, three bytes
/// per pixel (R, G, B), <see cref="Width"/> × <see cref="Height"/> pixels.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Height × Width × 3 bytes (HWC, as <c>numpy.asarray(img)</c>).</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height}");
        pixels ??= new byte[checked(width * height * 3)];
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"{pixels.Length} bytes for a {width}×{height} RGB image", nameof(pixels));
        (Width, Height, Pixels) = (width, height, pixels);
    }

    /// <summary>
    /// PIL's <c>img.crop((left, top, left + width, top + height))</c>: pixels outside the image are 0 (black), as
    /// PIL's crop pads.
    /// </summary>
    public RgbImage Crop(int left, int top, int width, int height)
    {
        var result = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= Height) continue;
            int x0 = Math.Max(0, -left), x1 = Math.Min(width, Width - left);
            if (x1 <= x0) continue;
            Array.Copy(Pixels, ((long)sy * Width + left + x0) * 3, result.Pixels, ((long)y * width + x0) * 3, (x1 - x0) * 3);
        }
        return result;
    }

    /// <summary>PIL's <c>img.transpose(Image.FLIP_LEFT_RIGHT)</c>.</summary>
    public RgbImage FlipLeftRight()
    {
        var result = new RgbImage(Width, Height);
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                long from = ((long)y * Width + x) * 3, to = ((long)y * Width + Width - 1 - x) * 3;
                result.Pixels[to] = Pixels[from];
                result.Pixels[to + 1] = Pixels[from + 1];
                result.Pixels[to + 2] = Pixels[from + 2];
            }
        return result;
    }
}
