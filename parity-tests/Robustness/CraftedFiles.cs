using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>Builds hostile and well-formed input files byte by byte, so that no binary fixture is committed.</summary>
public static class CraftedFiles
{
    /// <summary>Writes pickle opcodes (protocol 2).</summary>
    public sealed class PickleWriter
    {
        readonly MemoryStream _ms = new();
        public PickleWriter() { Op(0x80); Op(2); }
        public PickleWriter Op(byte b) { _ms.WriteByte(b); return this; }
        public PickleWriter Raw(string s) { _ms.Write(Encoding.ASCII.GetBytes(s)); return this; }
        public PickleWriter Global(string module, string name) => Op((byte)'c').Raw($"{module}\n{name}\n");
        public PickleWriter Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            Op((byte)'X');
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, b.Length);
            _ms.Write(n);
            _ms.Write(b);
            return this;
        }
        public PickleWriter Int(long v)
        {
            if (v is >= 0 and < 256) return Op((byte)'K').Op((byte)v);
            if (v is >= int.MinValue and <= int.MaxValue)
            {
                Op((byte)'J');
                Span<byte> n = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(n, (int)v);
                _ms.Write(n);
                return this;
            }
            Op(0x8a).Op(8);                                                        // LONG1, 8 bytes
            Span<byte> l = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(l, v);
            _ms.Write(l);
            return this;
        }
        public PickleWriter Tuple(params long[] values)
        {
            Op((byte)'(');
            foreach (var v in values) Int(v);
            return Op((byte)'t');
        }
        public PickleWriter Mark() => Op((byte)'(');
        public byte[] Stop() { Op((byte)'.'); return _ms.ToArray(); }
    }

    /// <summary>
    /// A state_dict pickle as torch.save writes it: <c>OrderedDict</c> of float tensors, each
    /// <c>_rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())</c>.
    /// </summary>
    public static byte[] StateDictPickle(params (string Name, string Key, long Numel, long Offset, long[] Size, long[] Stride)[] tensors)
    {
        var w = new PickleWriter();
        w.Global("collections", "OrderedDict").Op((byte)')').Op((byte)'R');
        w.Mark();
        foreach (var t in tensors)
        {
            w.Str(t.Name);
            w.Global("torch._utils", "_rebuild_tensor_v2");
            w.Mark();
            w.Mark().Str("storage").Global("torch", "FloatStorage").Str(t.Key).Str("cpu").Int(t.Numel).Op((byte)'t').Op((byte)'Q');
            w.Int(t.Offset).Tuple(t.Size).Tuple(t.Stride).Op(0x89);
            w.Global("collections", "OrderedDict").Op((byte)')').Op((byte)'R');
            w.Op((byte)'t').Op((byte)'R');
        }
        w.Op((byte)'u');
        return w.Stop();
    }

    /// <summary>A pickle whose only content is a call of <paramref name="module"/>.<paramref name="name"/>("touch MARKER").</summary>
    public static byte[] CallPickle(string module, string name, string argument)
    {
        var w = new PickleWriter();
        w.Global(module, name).Mark().Str(argument).Op((byte)'t').Op((byte)'R');
        return w.Stop();
    }

    /// <summary>A one-tensor state_dict: key <c>w</c>, 2×2 float32 [1, 2, 3, 4].</summary>
    public static byte[] SmallPickle() => StateDictPickle(("w", "0", 4, 0, [2, 2], [2, 1]));

    public static byte[] SmallStorage()
    {
        var b = new byte[16];
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), i + 1);
        return b;
    }

    /// <summary>Writes a zip whose entries are exactly <paramref name="entries"/>, in that order.</summary>
    public static string Zip(string path, params (string Name, byte[] Content)[] entries)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        foreach (var (name, content) in entries)
        {
            var e = zip.CreateEntry(name, content.Length > 4096 ? CompressionLevel.SmallestSize : CompressionLevel.NoCompression);
            using var s = e.Open();
            s.Write(content);
        }
        return path;
    }

    /// <summary>A well-formed one-tensor .pth: <c>archive/data.pkl</c>, <c>archive/data/0</c>, <c>archive/version</c>.</summary>
    public static string SmallPth(string path) =>
        Zip(path, ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()), ("archive/version", "3\n"u8.ToArray()));

    /// <summary>
    /// The decoy archive, every entry inside <c>archive/</c> as torch.load demands: a benign <c>archive/a/data.pkl</c>
    /// that a "first */data.pkl" reader finds first, and a malicious <c>archive/data.pkl</c>, the one torch.load reads
    /// (the first entry's folder + <c>/data.pkl</c>).
    /// </summary>
    public static string DecoyPth(string path, string marker) =>
        Zip(path,
            ("archive/version", "3\n"u8.ToArray()),
            ("archive/a/data.pkl", SmallPickle()),
            ("archive/data/0", SmallStorage()),
            ("archive/data.pkl", CallPickle("posix", "system", $"touch {marker}")));

    /// <summary>gzip of <paramref name="content"/> (one member).</summary>
    public static byte[] Gzip(byte[] content)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(content);
        return ms.ToArray();
    }

    /// <summary>gzip of <paramref name="header"/> followed by <paramref name="zeros"/> zero bytes, streamed (never held whole).</summary>
    public static void GzipBomb(string path, byte[] header, long zeros)
    {
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.SmallestSize);
        gz.Write(header);
        var block = new byte[1 << 20];
        for (long left = zeros; left > 0; left -= block.Length) gz.Write(block, 0, (int)Math.Min(block.Length, left));
    }

    public static byte[] IdxImagesHeader(int count, int rows, int cols)
    {
        var h = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(h, 2051);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(12), cols);
        return h;
    }

    /// <summary>A PNG whose header declares <paramref name="width"/>×<paramref name="height"/> (the pixel data is a few bytes).</summary>
    public static byte[] PngHeaderOnly(int width, int height)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 0;                                                    // 8-bit grayscale
        Chunk(ms, "IHDR", ihdr);
        Chunk(ms, "IDAT", [0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(n, data.Length);
        s.Write(n);
        var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(td);
        BinaryPrimitives.WriteUInt32BigEndian(n, Crc(td));
        s.Write(n);
    }

    static uint Crc(byte[] data)
    {
        uint c = 0xffffffff;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xffffffff;
    }

    /// <summary>A safetensors file from a header JSON and <paramref name="data"/>.</summary>
    public static string Safetensors(string path, string headerJson, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        using var fs = File.Create(path);
        Span<byte> n = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)h.Length);
        fs.Write(n);
        fs.Write(h);
        fs.Write(data);
        return path;
    }
}
