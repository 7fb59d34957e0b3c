using System.Buffers.Binary;
using System.Text;

namespace ResnetMnist.Native;

/// <summary>
/// Reads and edits the symbol-version requirements (<c>.gnu.version_r</c>, ELF type SHT_GNU_verneed)
/// of a 64-bit little-endian ELF shared library.
/// </summary>
/// <remarks>
/// Used to mark a version requirement "weak" (VER_FLG_WEAK), which turns the dynamic loader's
/// fatal "version `GLIBCXX_3.4.32' not found" into a warning. See <see cref="NativeLoader"/>.
/// </remarks>
public static class ElfVersionNeeds
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    /// <summary>VER_FLG_WEAK from elf.h.</summary>
    public const ushort WeakFlag = 0x2;

    /// <summary>One Vernaux entry: a version name needed from a library.</summary>
    /// <param name="Library">The library the version is needed from (e.g. libstdc++.so.6).</param>
    /// <param name="Version">The version name (e.g. GLIBCXX_3.4.32).</param>
    /// <param name="Flags">vna_flags; bit 0x2 is VER_FLG_WEAK.</param>
    /// <param name="FlagsOffset">File offset of the 16-bit vna_flags field.</param>
    public sealed record Need(string Library, string Version, ushort Flags, long FlagsOffset)
    {
        public bool IsWeak => (Flags & WeakFlag) != 0;
    }

    /// <summary>Lists every version requirement of the ELF image.</summary>
    /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF file, or a malformed one.</exception>
    public static IReadOnlyList<Need> Read(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF files are supported");

        long shoff = (long)U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
        var needs = new List<Need>();
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)(shoff + (long)i * shentsize));
            if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
            long offset = (long)U64(elf, sh + 0x18);
            int link = (int)U32(elf, sh + 0x28);
            uint count = U32(elf, sh + 0x2C); // sh_info: number of Verneed entries
            int strSh = checked((int)(shoff + (long)link * shentsize));
            long strOffset = (long)U64(elf, strSh + 0x18);

            long vn = offset;
            for (uint n = 0; n < count; n++)
            {
                int cnt = U16(elf, (int)vn + 2);
                string file = CString(elf, strOffset + U32(elf, (int)vn + 4));
                long aux = vn + U32(elf, (int)vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    ushort flags = U16(elf, (int)aux + 4);
                    string name = CString(elf, strOffset + U32(elf, (int)aux + 8));
                    needs.Add(new Need(file, name, flags, aux + 4));
                    uint next = U32(elf, (int)aux + 12);
                    if (next == 0) break;
                    aux += next;
                }
                uint vnNext = U32(elf, (int)vn + 12);
                if (vnNext == 0) break;
                vn += vnNext;
            }
        }
        return needs;
    }

    /// <summary>
    /// Returns a copy of <paramref name="elf"/> in which every requirement whose version is in
    /// <paramref name="versions"/> carries VER_FLG_WEAK. Nothing else changes (only the 16-bit flags fields).
    /// </summary>
    public static byte[] Weaken(ReadOnlySpan<byte> elf, IReadOnlySet<string> versions, out int changed)
    {
        var copy = elf.ToArray();
        changed = 0;
        foreach (var need in Read(elf))
        {
            if (!versions.Contains(need.Version) || need.IsWeak) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan((int)need.FlagsOffset), (ushort)(need.Flags | WeakFlag));
            changed++;
        }
        return copy;
    }

    static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.Slice(at, 2));
    static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(at, 4));
    static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(at, 8));

    static string CString(ReadOnlySpan<byte> b, long at)
    {
        var s = b[(int)at..];
        int end = s.IndexOf((byte)0);
        if (end < 0) throw new InvalidDataException("unterminated string in ELF string table");
        return Encoding.ASCII.GetString(s[..end]);
    }
}
