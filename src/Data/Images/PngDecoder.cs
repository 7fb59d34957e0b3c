using System.Buffers.Binary;
using System.IO.Compression;

namespace ResnetMnist.Data.Images;

/// <summary>
/// Decodes a PNG file into RGB as Pillow 9.4's <c>Image.open(f).convert('RGB')</c> does: every colour type and bit
/// depth of the PNG specification, Adam7 interlacing, and Pillow's conversions: grey of 1, 2 and 4 bits scaled to
/// 0..255 (×255, ×85, ×17); 16-bit grey opened as mode <c>I</c> and clipped to 0..255 by <c>convert</c>; other 16-bit
/// samples keep their high byte; alpha dropped (not composited); a palette looked up as written, indices past its
/// end giving Pillow's default grey <c>(i, i, i)</c>; <c>tRNS</c> ignored (it only adds transparency). Every chunk's
/// CRC is checked; a truncated or corrupt file is refused.
/// </summary>
public static class PngDecoder
{
    /// <summary>The 8 bytes every PNG file starts with.</summary>
    public static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Width and height from the <c>IHDR</c> chunk, without decoding.</summary>
    public static (int Width, int Height) ReadSize(byte[] data, string path)
    {
        var h = ReadHeader(data, path);
        return (h.Width, h.Height);
    }

    sealed record Header(int Width, int Height, int BitDepth, int ColourType, bool Interlaced)
    {
        /// <summary>Samples per pixel of the colour type.</summary>
        public int Channels => ColourType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        public int BitsPerPixel => Channels * BitDepth;
        /// <summary>Bytes of one filtered row of <paramref name="width"/> pixels (without the filter byte).</summary>
        public long RowBytes(int width) => ((long)width * BitsPerPixel + 7) / 8;
    }

    static DataException Bad(string path, string what) => new($"{path}: {what}; allowed: a PNG or JPEG image");

    static Header ReadHeader(byte[] data, string path)
    {
        if (data.Length < 8 + 8 + 13 + 4 || !data.AsSpan(0, 8).SequenceEqual(Signature) || !data.AsSpan(12, 4).SequenceEqual("IHDR"u8))
            throw Bad(path, "not a PNG file (no PNG signature and IHDR chunk)");
        var ihdr = data.AsSpan(16, 13);
        int width = BinaryPrimitives.ReadInt32BigEndian(ihdr), height = BinaryPrimitives.ReadInt32BigEndian(ihdr[4..]);
        int depth = ihdr[8], colour = ihdr[9], interlace = ihdr[12];
        bool valid = colour switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => false,
        };
        if (!valid) throw Bad(path, $"PNG colour type {colour} with bit depth {depth} is not defined by the PNG specification");
        if (ihdr[10] != 0 || ihdr[11] != 0 || interlace > 1) throw Bad(path, "PNG header names an unknown compression, filter or interlace method");
        if (width <= 0 || height <= 0) throw Bad(path, $"PNG image is {width}×{height} pixels");
        return new Header(width, height, depth, colour, interlace == 1);
    }

    /// <summary>Decodes <paramref name="data"/> (a whole PNG file) to RGB; at most <paramref name="maxPixels"/> pixels.</summary>
    public static RgbImage Decode(byte[] data, string path, long maxPixels)
    {
        var header = ReadHeader(data, path);
        ImageFile.CheckPixels(path, header.Width, header.Height, maxPixels);
        byte[]? palette = null;
        using var idat = new MemoryStream();
        int at = 8;
        bool ended = false;
        while (!ended)
        {
            if (at + 12 > data.Length) throw Bad(path, "truncated PNG file (no IEND chunk)");
            long length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at));
            if (length > data.Length - at - 12) throw Bad(path, "truncated PNG file (a chunk runs past the end)");
            var type = data.AsSpan(at + 4, 4);
            var body = data.AsSpan(at + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at + 8 + (int)length));
            if (Crc32(data.AsSpan(at + 4, 4 + (int)length)) != crc)
                throw Bad(path, $"corrupt PNG file (bad CRC in chunk {System.Text.Encoding.ASCII.GetString(type).Replace('\0', '?')})");
            if (type.SequenceEqual("PLTE"u8))
            {
                if (length % 3 != 0 || length > 768) throw Bad(path, $"corrupt PNG file (PLTE chunk of {length} bytes)");
                palette = body.ToArray();
            }
            else if (type.SequenceEqual("IDAT"u8)) idat.Write(body);
            else if (type.SequenceEqual("IEND"u8)) ended = true;
            at += 12 + (int)length;
        }
        if (header.ColourType == 3 && palette is null) throw Bad(path, "corrupt PNG file (palette image without a PLTE chunk)");

        var raw = Inflate(idat.ToArray(), RawLength(header), path);
        var samples = header.Interlaced ? Deinterlace(raw, header, path) : Unfilter(raw, 0, header, header.Width, header.Height, path);
        return ToRgb(samples, header, palette);
    }

    static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    static (int W, int H) PassSize(Header h, int pass)
    {
        var (x0, y0, dx, dy) = Adam7[pass];
        return ((h.Width - x0 + dx - 1) / dx, (h.Height - y0 + dy - 1) / dy);
    }

    static long RawLength(Header h)
    {
        if (!h.Interlaced) return h.Height * (1 + h.RowBytes(h.Width));
        long total = 0;
        for (int p = 0; p < 7; p++)
        {
            var (w, ht) = PassSize(h, p);
            if (w > 0 && ht > 0) total += ht * (1 + h.RowBytes(w));
        }
        return total;
    }

    static byte[] Inflate(byte[] compressed, long length, string path)
    {
        var raw = new byte[length];
        try
        {
            using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) throw Bad(path, $"truncated PNG image data ({got} of {length} bytes)");
                got += n;
            }
        }
        catch (InvalidDataException e) { throw Bad(path, $"corrupt PNG image data ({e.Message})"); }
        return raw;
    }

    /// <summary>Reverses the row filters of one (sub)image; returns its unpacked samples, one int per sample.</summary>
    static int[] Unfilter(byte[] raw, long offset, Header h, int width, int height, string path)
    {
        int stride = (int)h.RowBytes(width), bpp = Math.Max(1, h.BitsPerPixel / 8);
        var prev = new byte[stride];
        var row = new byte[stride];
        var samples = new int[(long)width * height * h.Channels];
        for (int y = 0; y < height; y++)
        {
            int filter = raw[offset];
            Array.Copy(raw, offset + 1, row, 0, stride);
            offset += 1 + stride;
            for (int i = 0; i < stride; i++)
            {
                int a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                row[i] = filter switch
                {
                    0 => row[i],
                    1 => (byte)(row[i] + a),
                    2 => (byte)(row[i] + b),
                    3 => (byte)(row[i] + ((a + b) >> 1)),
                    4 => (byte)(row[i] + Paeth(a, b, c)),
                    _ => throw Bad(path, $"corrupt PNG image data (row filter {filter})"),
                };
            }
            Unpack(row, h, width, samples, (long)y * width * h.Channels);
            (prev, row) = (row, prev);
        }
        return samples;
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    static void Unpack(byte[] row, Header h, int width, int[] samples, long at)
    {
        int n = width * h.Channels;
        switch (h.BitDepth)
        {
            case 8: for (int i = 0; i < n; i++) samples[at + i] = row[i]; break;
            case 16: for (int i = 0; i < n; i++) samples[at + i] = row[2 * i] << 8 | row[2 * i + 1]; break;
            default:
                int bits = h.BitDepth, mask = (1 << bits) - 1, perByte = 8 / bits;
                for (int i = 0; i < n; i++)
                    samples[at + i] = row[i / perByte] >> (8 - bits * (i % perByte + 1)) & mask;
                break;
        }
    }

    static int[] Deinterlace(byte[] raw, Header h, string path)
    {
        var samples = new int[(long)h.Width * h.Height * h.Channels];
        long offset = 0;
        int c = h.Channels;
        for (int p = 0; p < 7; p++)
        {
            var (w, ht) = PassSize(h, p);
            if (w <= 0 || ht <= 0) continue;
            var sub = Unfilter(raw, offset, h, w, ht, path);
            offset += ht * (1 + h.RowBytes(w));
            var (x0, y0, dx, dy) = Adam7[p];
            for (int y = 0; y < ht; y++)
                for (int x = 0; x < w; x++)
                    Array.Copy(sub, ((long)y * w + x) * c, samples, ((long)(y0 + y * dy) * h.Width + x0 + x * dx) * c, c);
        }
        return samples;
    }

    /// <summary>Pillow's mode for the file, then its <c>convert('RGB')</c>.</summary>
    static RgbImage ToRgb(int[] s, Header h, byte[]? palette)
    {
        var img = new RgbImage(h.Width, h.Height);
        var o = img.Pixels;
        long n = (long)h.Width * h.Height;
        int depth = h.BitDepth;
        // Grey and grey-alpha: Pillow's mode 1 (×255), L;2 (×85), L;4 (×17), L; 16-bit grey is mode I, which
        // convert('RGB') clips to 0..255; 16-bit grey-alpha (LA;16B) keeps the high byte.
        int Grey(int v) => depth switch
        {
            1 => v * 255, 2 => v * 85, 4 => v * 17, 8 => v,
            _ => h.ColourType == 0 ? Math.Min(v, 255) : v >> 8,
        };
        int High(int v) => depth == 16 ? v >> 8 : v;
        for (long i = 0; i < n; i++)
        {
            int r, g, b;
            switch (h.ColourType)
            {
                case 0: r = g = b = Grey(s[i]); break;
                case 4: r = g = b = Grey(s[2 * i]); break;
                case 2: r = High(s[3 * i]); g = High(s[3 * i + 1]); b = High(s[3 * i + 2]); break;
                case 6: r = High(s[4 * i]); g = High(s[4 * i + 1]); b = High(s[4 * i + 2]); break;
                default:
                    int k = s[i];
                    if (3 * k + 2 < palette!.Length) { r = palette[3 * k]; g = palette[3 * k + 1]; b = palette[3 * k + 2]; }
                    else r = g = b = k;
                    break;
            }
            o[3 * i] = (byte)r; o[3 * i + 1] = (byte)g; o[3 * i + 2] = (byte)b;
        }
        return img;
    }

    static readonly uint[] CrcTable = MakeCrcTable();

    static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, as zlib's <c>crc32</c>).</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var x in bytes) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
