using System.Formats.Tar;
using System.IO.Compression;
using ResnetMnist.Core;

namespace ResnetMnist.Data;

/// <summary>Safe extraction of a dataset's published <c>.tar.gz</c> into its one folder (torchvision's <c>extract_archive</c>, checked).</summary>
public static class TarGzArchive
{
    /// <summary>Largest member extracted (CIFAR-10's batches are about 31 MB each, CIFAR-100's <c>train</c> about 155 MB).</summary>
    public const long MaxMemberBytes = 256L << 20;
    /// <summary>Most bytes extracted in all (CIFAR-10's archive unpacks to about 178 MB, CIFAR-100's to about 185 MB).</summary>
    public const long MaxExtractedBytes = 1L << 30;
    /// <summary>Most members (CIFAR-10's archive has 9, CIFAR-100's 5).</summary>
    public const int MaxMembers = 64;

    /// <summary>
    /// Extracts <paramref name="archive"/> (a published dataset archive such as <c>cifar-10-python.tar.gz</c>) into
    /// <paramref name="root"/>. Only regular files directly under <paramref name="folder"/><c>/</c> (and that folder's
    /// own entry) are accepted; an absolute name, a <c>..</c>, a link, a device or any other member refuses the whole
    /// archive, as do sizes over the limits. Files are written to a fresh folder beside the target and moved into
    /// place only once the whole archive has been read, so a refused or corrupt archive leaves nothing behind; a file
    /// already in the folder is kept (the archive's copy is dropped). With <paramref name="md5"/> the archive's md5
    /// must match first (torchvision checks its <c>tgz_md5</c>).
    /// </summary>
    /// <returns>The files it placed (full paths), so that a caller can remove them again.</returns>
    public static List<string> Extract(string archive, string root, string folder, string? md5 = null)
    {
        long length = InputFiles.RequireRegularFile(archive, "a .tar.gz archive", MaxExtractedBytes, m => new DataException($"{archive}: {m}"));
        if (length < 18) throw new DataException($"{archive}: truncated or corrupt gzip data ({length} bytes, shorter than a gzip header and trailer)");
        if (md5 is not null)
        {
            var actual = DatasetFetcher.Md5Of(archive);
            if (!string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                throw new DataException($"{archive}: md5 {actual} does not match the expected {md5}; download it again");
        }
        Directory.CreateDirectory(root);
        var staging = Path.Combine(root, $".{folder}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var names = new List<string>();
            long total = 0;
            using (var file = InputFiles.OpenRead(archive, "a .tar.gz archive", MaxExtractedBytes, m => new DataException($"{archive}: {m}")))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
            using (var counted = new CountingStream(gz))
            using (var tar = new TarReader(counted))
            {
                TarEntry? e;
                while ((e = tar.GetNextEntry()) is not null)
                {
                    var member = e.Name;
                    DataException Refuse(string why) => new($"{archive}: member '{Clip(member)}' {why}; refused (the archive holds only the files of {folder}/)");
                    if (names.Count >= MaxMembers) throw new DataException($"{archive}: more than {MaxMembers} members; refused");
                    if (member.Length == 0 || member.StartsWith('/') || member.Contains('\\') || member.Contains('\0') || (member.Length > 1 && member[1] == ':'))
                        throw Refuse("has an absolute or malformed name");
                    var parts = member.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
                    if (parts.Any(p => p == "..")) throw Refuse("climbs out of the folder with '..'");
                    switch (e.EntryType)
                    {
                        case TarEntryType.Directory:
                            if (parts.Length == 1 && parts[0] == folder) continue;
                            throw Refuse("is a folder other than " + folder);
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                            break;
                        default:
                            throw Refuse($"is a {e.EntryType}, not a regular file");
                    }
                    if (parts.Length != 2 || parts[0] != folder) throw Refuse($"is not a file directly under {folder}/");
                    if (e.Length < 0 || e.Length > MaxMemberBytes) throw Refuse($"is {InputFiles.Size(e.Length)}; allowed: at most {InputFiles.Size(MaxMemberBytes)}");
                    total += e.Length;
                    if (total > MaxExtractedBytes) throw new DataException($"{archive}: unpacks to more than {InputFiles.Size(MaxExtractedBytes)}; refused");
                    if (names.Contains(parts[1])) throw Refuse("appears twice");
                    var target = Path.Combine(staging, parts[1]);
                    using (var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
                    {
                        if (e.DataStream is { } data) CopyExactly(data, output, e.Length, () => Refuse("is truncated"));
                        else if (e.Length != 0) throw Refuse("is truncated");
                    }
                    names.Add(parts[1]);
                }
                // GZipStream ends quietly on a cut-off file: drain it and check the trailer's ISIZE (length mod 2^32).
                var sink = new byte[1 << 16];
                while (counted.Read(sink, 0, sink.Length) > 0)
                    if (counted.Count > MaxExtractedBytes + (64L << 20))
                        throw new DataException($"{archive}: more than {InputFiles.Size(MaxExtractedBytes)} of data after the tar archive's end; refused");
                var trailer = new byte[4];
                file.Seek(-4, SeekOrigin.End);
                file.ReadExactly(trailer);
                if (BitConverter.ToUInt32(trailer) != (uint)counted.Count)
                    throw new DataException($"{archive}: truncated or corrupt gzip data (decompressed {counted.Count} bytes, the gzip trailer says otherwise); download it again");
            }
            var dest = Path.Combine(root, folder);
            Directory.CreateDirectory(dest);
            var placed = new List<string>();
            try
            {
                foreach (var n in names)
                {
                    var target = Path.GetFullPath(Path.Combine(dest, n));
                    if (Path.Exists(target)) continue;
                    File.Move(Path.Combine(staging, n), target);
                    placed.Add(target);
                }
            }
            catch (IOException e)
            {
                foreach (var f in placed) try { File.Delete(f); } catch (IOException) { }
                throw new DataException($"{dest}: cannot place the files of {archive} ({e.Message})", e);
            }
            return placed;
        }
        catch (InvalidDataException e) { throw new DataException($"{archive}: truncated or corrupt archive ({e.Message})", e); }
        catch (EndOfStreamException e) { throw new DataException($"{archive}: truncated archive", e); }
        catch (FormatException e) { throw new DataException($"{archive}: corrupt tar data ({e.Message})", e); }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { }
        }
    }

    static void CopyExactly(Stream from, Stream to, long length, Func<Exception> truncated)
    {
        var buffer = new byte[1 << 16];
        long left = length;
        while (left > 0)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) throw truncated();
            to.Write(buffer, 0, n);
            left -= n;
        }
    }

    /// <summary>Counts the bytes read through it.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }
        public override int Read(byte[] buffer, int offset, int count) { int n = inner.Read(buffer, offset, count); Count += n; return n; }
        public override int Read(Span<byte> buffer) { int n = inner.Read(buffer); Count += n; return n; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    static string Clip(string s) => Printable.Escape(s, 80);
}
