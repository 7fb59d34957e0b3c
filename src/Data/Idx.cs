using System.Buffers.Binary;
using System.IO.Compression;

namespace ResnetMnist.Data;

/// <summary>Reads and writes IDX files (LeCun's MNIST format), raw or gzip'd.</summary>
public static class Idx
{
    /// <summary>Magic of an unsigned-byte 3-D file (images: count, rows, cols).</summary>
    public const int ImagesMagic = 2051;
    /// <summary>Magic of an unsigned-byte 1-D file (labels: count).</summary>
    public const int LabelsMagic = 2049;

    /// <summary>Images: count × rows × cols bytes, row-major.</summary>
    public sealed record Images(int Count, int Rows, int Cols, byte[] Pixels);

    public static Images ReadImages(string path)
    {
        var bytes = ReadAll(path);
        var (count, dims) = Header(path, bytes, ImagesMagic, 3);
        long need = 16 + (long)count * dims[0] * dims[1];
        if (bytes.Length != need)
            throw new DataException($"{path}: header says {count} images of {dims[0]}×{dims[1]} ({need} bytes) but the file has {bytes.Length} bytes");
        return new Images(count, dims[0], dims[1], bytes[16..]);
    }

    public static byte[] ReadLabels(string path)
    {
        var bytes = ReadAll(path);
        var (count, _) = Header(path, bytes, LabelsMagic, 1);
        if (bytes.Length != 8 + (long)count)
            throw new DataException($"{path}: header says {count} labels ({8 + (long)count} bytes) but the file has {bytes.Length} bytes");
        return bytes[8..];
    }

    static (int count, int[] dims) Header(string path, byte[] b, int magic, int ndim)
    {
        int headerLen = 4 + 4 * ndim;
        if (b.Length < headerLen) throw new DataException($"{path}: too short for an IDX header ({b.Length} bytes)");
        int m = BinaryPrimitives.ReadInt32BigEndian(b);
        if (m != magic)
            throw new DataException($"{path}: bad IDX magic {m} (expected {magic}: {(magic == ImagesMagic ? "an images" : "a labels")} file)");
        int count = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4));
        var dims = new int[ndim - 1];
        for (int i = 0; i < dims.Length; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(8 + 4 * i));
        if (count < 0 || dims.Any(d => d <= 0)) throw new DataException($"{path}: invalid IDX dimensions");
        return (count, dims);
    }

    static byte[] ReadAll(string path)
    {
        if (Directory.Exists(path)) throw new DataException($"{path}: is a directory, expected an IDX file");
        try
        {
            using var file = File.OpenRead(path);
            if (!path.EndsWith(".gz", StringComparison.Ordinal)) { var ms0 = new MemoryStream(); file.CopyTo(ms0); return ms0.ToArray(); }
            if (file.Length < 18) throw new DataException($"{path}: truncated or corrupt gzip data ({file.Length} bytes, shorter than a gzip header and trailer)");
            using var gz = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
            var ms = new MemoryStream();
            gz.CopyTo(ms);
            // GZipStream returns what it could decompress from a truncated file without complaint; the gzip trailer
            // (ISIZE: the uncompressed length mod 2^32, the file's last 4 bytes) tells a whole file from a cut one.
            file.Seek(-4, SeekOrigin.End);
            Span<byte> trailer = stackalloc byte[4];
            file.ReadExactly(trailer);
            uint isize = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
            if (isize != (uint)ms.Length)
                throw new DataException($"{path}: truncated or corrupt gzip data (decompressed {ms.Length} bytes, the gzip trailer says {isize}); download the file again");
            return ms.ToArray();
        }
        catch (FileNotFoundException) { throw new DataException($"{path}: file not found"); }
        catch (InvalidDataException e) { throw new DataException($"{path}: truncated or corrupt gzip data ({e.Message})", e); }
        catch (EndOfStreamException e) { throw new DataException($"{path}: truncated gzip data", e); }
    }

    /// <summary>Writes an images file (gzip'd when the name ends in .gz).</summary>
    public static void WriteImages(string path, int count, int rows, int cols, ReadOnlySpan<byte> pixels)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), cols);
        Write(path, header, pixels);
    }

    /// <summary>Writes a labels file (gzip'd when the name ends in .gz).</summary>
    public static void WriteLabels(string path, ReadOnlySpan<byte> labels)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), labels.Length);
        Write(path, header, labels);
    }

    static void Write(string path, byte[] header, ReadOnlySpan<byte> body)
    {
        using var file = File.Create(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionLevel.Optimal) : file;
        s.Write(header);
        s.Write(body);
    }
}
