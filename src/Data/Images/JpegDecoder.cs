using System.Runtime.InteropServices;

namespace ResnetMnist.Data.Images;

/// <summary>
/// Decodes a JPEG file into RGB as Pillow 9.4 on Debian 12 does (<c>Image.open(f).convert('RGB')</c>), through the
/// same libjpeg-turbo 2.1 code Pillow's <c>libjpeg62-turbo</c> runs: full size (no draft), the accurate integer IDCT
/// (<c>JDCT_ISLOW</c>) and fancy upsampling, libjpeg's YCbCr→RGB. Pillow picks the mode by the number of components:
/// 1 is <c>L</c> (grey, repeated into R, G, B), 3 is <c>RGB</c>, 4 is <c>CMYK</c> in Adobe's inverted convention,
/// turned into RGB by Pillow's <c>cmyk2rgb</c>. The library is TurboJPEG (<c>libturbojpeg.so.0</c>, Debian package
/// <c>libturbojpeg0</c>): it reports errors by return value, where the plain libjpeg API needs <c>longjmp</c>.
/// Warnings (corrupt or truncated data) refuse the file.
/// </summary>
public static unsafe class JpegDecoder
{
    /// <summary>The Debian package that provides the library.</summary>
    public const string Package = "libturbojpeg0";
    const string LibraryFile = "libturbojpeg.so.0";

    const int TJPF_RGB = 0, TJPF_GRAY = 6, TJPF_CMYK = 11;

    sealed class Api
    {
        public required delegate* unmanaged<nint> InitDecompress;
        public required delegate* unmanaged<nint, byte*, nuint, byte*, int, int, int, int, int, int> Decompress2;
        public required delegate* unmanaged<nint, byte*> GetErrorStr2;
        public required delegate* unmanaged<nint, int> Destroy;
    }

    static readonly Lazy<Api?> Library = new(Load);

    static Api? Load()
    {
        nint lib = 0;
        foreach (var name in new[] { LibraryFile, "/usr/lib/x86_64-linux-gnu/" + LibraryFile, "libturbojpeg.so", "turbojpeg" })
            if (NativeLibrary.TryLoad(name, out lib)) break;
        if (lib == 0) return null;
        nint F(string n) => NativeLibrary.GetExport(lib, n);
        return new Api
        {
            InitDecompress = (delegate* unmanaged<nint>)F("tjInitDecompress"),
            Decompress2 = (delegate* unmanaged<nint, byte*, nuint, byte*, int, int, int, int, int, int>)F("tjDecompress2"),
            GetErrorStr2 = (delegate* unmanaged<nint, byte*>)F("tjGetErrorStr2"),
            Destroy = (delegate* unmanaged<nint, int>)F("tjDestroy"),
        };
    }

    static Api Require(string path) => Library.Value ?? throw new DataException(
        $"{path}: JPEG decoding needs libjpeg-turbo's {LibraryFile}, which is not installed; allowed: install it with `apt-get install {Package}`");

    /// <summary>True where the JPEG library loads.</summary>
    public static bool Available => Library.Value is not null;

    static DataException Bad(string path, string what) => new($"{path}: {what}; allowed: a PNG or JPEG image");

    static string ErrorText(Api api, nint handle)
    {
        var s = Marshal.PtrToStringUTF8((nint)api.GetErrorStr2(handle)) ?? "unknown error";
        return ResnetMnist.Core.Printable.Escape(s, 120);
    }

    /// <summary>Width and height from the frame header, without decoding.</summary>
    public static (int Width, int Height) ReadSize(byte[] data, string path)
    {
        var (w, h, _) = Header(data, path);
        return (w, h);
    }

    /// <summary>
    /// Width, height and number of components from the first SOF marker, read as Pillow's <c>SOF</c> handler reads
    /// it (TurboJPEG's own header call refuses subsamplings it has no name for, e.g. subsampled CMYK, which Pillow
    /// and libjpeg decode). Pillow reads only 8-bit samples and 1, 3 or 4 components.
    /// </summary>
    static (int Width, int Height, int Components) Header(byte[] data, string path)
    {
        int at = 2;
        while (at + 4 <= data.Length)
        {
            if (data[at] != 0xFF) throw Bad(path, $"corrupt JPEG data (no marker at byte {at})");
            int marker = data[at + 1];
            if (marker == 0xFF) { at++; continue; }                        // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD8)) { at += 2; continue; } // markers without a length
            int length = data[at + 2] << 8 | data[at + 3];
            if (length < 2 || at + 2 + length > data.Length) break;
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                if (length < 8) break;
                int precision = data[at + 4], height = data[at + 5] << 8 | data[at + 6], width = data[at + 7] << 8 | data[at + 8], components = data[at + 9];
                if (precision != 8) throw Bad(path, $"JPEG with {precision}-bit samples (Pillow reads 8-bit JPEG only)");
                if (components is not (1 or 3 or 4)) throw Bad(path, $"JPEG with {components} components (Pillow reads 1, 3 or 4)");
                if (width == 0 || height == 0) throw Bad(path, $"JPEG frame of {width}×{height} pixels");
                return (width, height, components);
            }
            if (marker is 0xDA or 0xD9) break;
            at += 2 + length;
        }
        throw Bad(path, "truncated or corrupt JPEG file (no frame header before the image data)");
    }

    /// <summary>Decodes <paramref name="data"/> (a whole JPEG file) to RGB; at most <paramref name="maxPixels"/> pixels.</summary>
    public static RgbImage Decode(byte[] data, string path, long maxPixels)
    {
        var api = Require(path);
        var (w, h, channels) = Header(data, path);
        ImageFile.CheckPixels(path, w, h, maxPixels);
        // libjpeg picks the file's colour space (YCbCr or RGB, CMYK or YCCK) and converts to the requested output.
        int format = channels switch { 1 => TJPF_GRAY, 3 => TJPF_RGB, _ => TJPF_CMYK };
        var raw = new byte[checked((long)w * h * channels)];
        nint handle = api.InitDecompress();
        if (handle == 0) throw new DataException($"{path}: the JPEG library could not start a decoder");
        try
        {
            int rc;
            fixed (byte* p = data)
            fixed (byte* d = raw)
                rc = api.Decompress2(handle, p, (nuint)data.Length, d, w, 0, h, format, 0);
            // flags 0: accurate DCT (JDCT_ISLOW), fancy upsampling, as Pillow decodes without draft; a warning also fails
            if (rc != 0) throw Bad(path, $"corrupt JPEG data ({ErrorText(api, handle)})");
        }
        finally { api.Destroy(handle); }
        return ToRgb(raw, w, h, channels);
    }

    static RgbImage ToRgb(byte[] raw, int w, int h, int channels)
    {
        if (channels == 3) return new RgbImage(w, h, raw);
        var img = new RgbImage(w, h);
        var o = img.Pixels;
        long n = (long)w * h;
        if (channels == 1)
        {
            for (long i = 0; i < n; i++) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = raw[i];
            return img;
        }
        for (long i = 0; i < n; i++)
        {
            // Pillow unpacks CMYK;I (each byte inverted), then cmyk2rgb: nk = 255 - k, out = clip8(nk - muldiv255(c, nk)).
            int nk = raw[4 * i + 3]; // 255 - (255 - stored k)
            for (int ch = 0; ch < 3; ch++)
            {
                int c = 255 - raw[4 * i + ch];
                int t = c * nk + 128;
                int v = nk - (((t >> 8) + t) >> 8);
                o[3 * i + ch] = (byte)Math.Clamp(v, 0, 255);
            }
        }
        return img;
    }
}
