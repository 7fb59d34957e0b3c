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

    /// <summary>Largest IDX payload accepted (MNIST's training images are 47 MB).</summary>
    public const long MaxBytes = 1L << 30;
    /// <summary>Largest image side accepted.</summary>
    public const int MaxSide = 1024;
    /// <summary>Deflate cannot expand data by more than about 1032:1; a header asking for more than that is a lie.</summary>
    const long MaxDeflateRatio = 1032;

    public static Images ReadImages(string path)
    {
        var (count, dims, pixels) = Read(path, ImagesMagic, 3);
        return new Images(count, dims[0], dims[1], pixels);
    }

    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, 1).Data;

    /// <summary>
    /// Streams the file (decompressing .gz with multi-member and zero-padded files allowed), reads the header, checks
    /// the sizes it declares (overflow-safe, against the file and <see cref="MaxBytes"/>) before allocating, then reads
    /// exactly that many bytes and refuses files whose data is shorter or longer.
    /// </summary>
    static (int Count, int[] Dims, byte[] Data) Read(string path, int magic, int ndim)
    {
        long fileLength = InputFiles.RequireRegularFile(path, "an IDX file", MaxBytes + 1024,
            m => new DataException(m.StartsWith("is a directory", StringComparison.Ordinal) ? $"{path}: is a directory, expected an IDX file" : $"{path}: {m}"));
        bool gz = path.EndsWith(".gz", StringComparison.Ordinal);
        try
        {
            using var file = InputFiles.OpenRead(path, "an IDX file", MaxBytes + 1024, m => new DataException($"{path}: {m}"));
            if (gz && fileLength < 18) throw new DataException($"{path}: truncated or corrupt gzip data ({fileLength} bytes, shorter than a gzip header and trailer)");
            using Stream s = gz ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
            int headerLen = 4 + 4 * ndim;
            var header = new byte[headerLen];
            int got = s.ReadAtLeast(header, headerLen, throwOnEndOfStream: false);
            if (got < headerLen)
            {
                if (gz && !CleanGzipEnd(file, got)) throw Truncated(path, got, headerLen);
                throw new DataException($"{path}: too short for an IDX header ({got} bytes)");
            }
            int m = BinaryPrimitives.ReadInt32BigEndian(header);
            if (m != magic)
                throw new DataException($"{path}: bad IDX magic {m} (expected {magic}: {(magic == ImagesMagic ? "an images" : "a labels")} file)");
            int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
            var dims = new int[ndim - 1];
            for (int i = 0; i < dims.Length; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8 + 4 * i));
            string what = ndim == 3 ? $"{count} images of {(dims.Length > 1 ? $"{dims[0]}×{dims[1]}" : "")}" : $"{count} labels";
            if (count < 0 || dims.Any(d => d <= 0 || d > MaxSide))
                throw new DataException($"{path}: invalid IDX dimensions (header says {what}); allowed: a count >= 0 and sides from 1 to {MaxSide}");
            long body = dims.Aggregate((long)count, (a, d) => a * d);                 // <= 2^31 * 2^20: no overflow
            long need = headerLen + body;
            if (body > MaxBytes)
                throw new DataException($"{path}: header says {what} ({need} bytes); allowed: at most {InputFiles.Size(MaxBytes)}");
            if (!gz && need != fileLength)
                throw new DataException($"{path}: header says {what} ({need} bytes) but the file has {fileLength} bytes");
            if (gz && need > fileLength * MaxDeflateRatio)
                throw new DataException($"{path}: header says {what} ({need} bytes), more than a {fileLength}-byte gzip file can hold; truncated or corrupt gzip data");
            var data = new byte[body];
            int read = s.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (read < body)
            {
                if (gz && !CleanGzipEnd(file, headerLen + read)) throw Truncated(path, headerLen + read, need);
                throw new DataException($"{path}: header says {what} ({need} bytes) but the file has {headerLen + read} bytes");
            }
            if (gz && s.ReadByte() >= 0)
                throw new DataException($"{path}: header says {what} ({need} bytes) but the decompressed file is longer; refused");
            return (count, dims, data);
        }
        catch (FileNotFoundException) { throw new DataException($"{path}: file not found"); }
        catch (InvalidDataException e) { throw new DataException($"{path}: truncated or corrupt gzip data ({e.Message})", e); }
        catch (EndOfStreamException e) { throw new DataException($"{path}: truncated gzip data", e); }
    }

    static DataException Truncated(string path, long got, long need) =>
        new($"{path}: truncated or corrupt gzip data (decompressed {got} bytes, the IDX header needs {need}); download the file again");

    /// <summary>
    /// Whether a gzip file whose data ran short ended cleanly (its last member's trailer ISIZE equals the bytes
    /// decompressed, trailing zero padding skipped): then the IDX header is wrong, not the compression.
    /// </summary>
    static bool CleanGzipEnd(Stream file, long decompressed)
    {
        long end = file.Length;
        var tail = new byte[(int)Math.Min(end, 1 << 16)];
        file.Seek(end - tail.Length, SeekOrigin.Begin);
        file.ReadExactly(tail);
        int last = tail.Length;
        while (last > 0 && tail[last - 1] == 0) last--;
        // ISIZE may itself end in zero bytes: try every cut inside the zero run.
        for (int cut = last; cut <= tail.Length; cut++)
            if (cut >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(cut - 4)) == (uint)decompressed) return true;
        return false;
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
        var bytes = body.ToArray();
        AtomicFile.Write(path, file =>
        {
            using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionLevel.Optimal, leaveOpen: true) : file;
            s.Write(header);
            s.Write(bytes);
        });
    }
}
