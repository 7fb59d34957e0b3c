using System.Text;

namespace ResnetMnist.Weights;

/// <summary>
/// Lists the globals (<c>module.name</c>) a pickle refers to, by walking its opcodes without executing anything
/// (the same walk as Python's <c>pickletools.genops</c>). Used to refuse files that would call foreign code in
/// PyTorch before they reach the unpickler.
/// </summary>
public static class PickleGlobals
{
    /// <summary>Globals a <c>torch.save(state_dict)</c> file may use.</summary>
    public static bool IsStateDictGlobal(string global) =>
        global is "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor"
        || (global.StartsWith("torch.", StringComparison.Ordinal) && global.EndsWith("Storage", StringComparison.Ordinal)
            && global.IndexOf('.', "torch.".Length) < 0);

    /// <summary>Globals that only appear when a whole <c>nn.Module</c> was pickled.</summary>
    public static bool IsWholeModelGlobal(string global) =>
        global == "torch._utils._rebuild_parameter"
        || global.StartsWith("torch.nn.", StringComparison.Ordinal)
        || global.StartsWith("torchvision.", StringComparison.Ordinal);

    /// <summary>Returns the globals referenced by <paramref name="pickle"/>, in order of appearance (duplicates removed).</summary>
    /// <exception cref="InvalidDataException">The opcode stream is truncated or holds an unknown opcode.</exception>
    public static IReadOnlyList<string> Scan(ReadOnlySpan<byte> pickle)
    {
        var found = new List<string>();
        var recentStrings = new List<string?>();       // values pushed by string opcodes (null: something else)
        var memo = new Dictionary<long, string?>();
        int pos = 0;

        ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, ref int at, long n)
        {
            if (n < 0 || at + n > p.Length) throw new InvalidDataException($"pickle truncated at byte {at} (needs {n} more)");
            var s = p.Slice(at, (int)n);
            at += (int)n;
            return s;
        }
        string Line(ReadOnlySpan<byte> p, ref int at)
        {
            int nl = p[at..].IndexOf((byte)'\n');
            if (nl < 0) throw new InvalidDataException($"pickle truncated at byte {at} (unterminated line)");
            var s = Encoding.UTF8.GetString(p.Slice(at, nl));
            at += nl + 1;
            return s;
        }
        long U(ReadOnlySpan<byte> b) { long v = 0; for (int i = b.Length - 1; i >= 0; i--) v = (v << 8) | b[i]; return v; }
        void Push(string? s) { recentStrings.Add(s); if (recentStrings.Count > 8) recentStrings.RemoveAt(0); }
        void Add(string g) { if (!found.Contains(g)) found.Add(g); }

        while (true)
        {
            if (pos >= pickle.Length) throw new InvalidDataException($"pickle truncated at byte {pos} (no STOP opcode)");
            byte op = pickle[pos++];
            switch (op)
            {
                case (byte)'.': return found;                                         // STOP
                case (byte)'(': case (byte)'0': case (byte)'1': case (byte)'2': case (byte)'N': case (byte)'Q':
                case (byte)'R': case (byte)'a': case (byte)'b': case (byte)'d': case (byte)'}': case (byte)'e':
                case (byte)'l': case (byte)']': case (byte)'o': case (byte)'s': case (byte)'t': case (byte)')':
                case (byte)'u': case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f:
                case 0x90: case 0x91: case 0x92: case 0x97: case 0x98:
                    Push(null); break;                                                 // no argument
                case (byte)'F': case (byte)'I': case (byte)'L': case (byte)'P': case (byte)'S':
                    Line(pickle, ref pos); Push(null); break;
                case (byte)'V': Push(Line(pickle, ref pos)); break;                    // UNICODE
                case (byte)'J': Take(pickle, ref pos, 4); Push(null); break;
                case (byte)'K': Take(pickle, ref pos, 1); Push(null); break;
                case (byte)'M': Take(pickle, ref pos, 2); Push(null); break;
                case (byte)'G': Take(pickle, ref pos, 8); Push(null); break;
                case 0x80: Take(pickle, ref pos, 1); break;                            // PROTO
                case 0x95: Take(pickle, ref pos, 8); break;                            // FRAME
                case 0x8a: Take(pickle, ref pos, U(Take(pickle, ref pos, 1))); Push(null); break;   // LONG1
                case 0x8b: Take(pickle, ref pos, U(Take(pickle, ref pos, 4))); Push(null); break;   // LONG4
                case (byte)'T': case (byte)'B': Take(pickle, ref pos, U(Take(pickle, ref pos, 4))); Push(null); break;
                case (byte)'U': case (byte)'C': Take(pickle, ref pos, U(Take(pickle, ref pos, 1))); Push(null); break;
                case 0x8e: case 0x96: Take(pickle, ref pos, U(Take(pickle, ref pos, 8))); Push(null); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 4))))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 1))))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(Take(pickle, ref pos, U(Take(pickle, ref pos, 8))))); break;
                case (byte)'c': case (byte)'i':                                        // GLOBAL, INST
                {
                    var module = Line(pickle, ref pos);
                    var name = Line(pickle, ref pos);
                    Add($"{module}.{name}");
                    Push(null);
                    break;
                }
                case 0x93:                                                             // STACK_GLOBAL
                {
                    int n = recentStrings.Count;
                    var module = n >= 2 ? recentStrings[n - 2] : null;
                    var name = n >= 1 ? recentStrings[n - 1] : null;
                    Add(module is not null && name is not null ? $"{module}.{name}" : "<STACK_GLOBAL with computed name>");
                    Push(null);
                    break;
                }
                case 0x82: Take(pickle, ref pos, 1); Add("<copyreg extension>"); Push(null); break;
                case 0x83: Take(pickle, ref pos, 2); Add("<copyreg extension>"); Push(null); break;
                case 0x84: Take(pickle, ref pos, 4); Add("<copyreg extension>"); Push(null); break;
                case (byte)'p': memo[long.Parse(Line(pickle, ref pos))] = recentStrings.LastOrDefault(); break;
                case (byte)'q': memo[U(Take(pickle, ref pos, 1))] = recentStrings.LastOrDefault(); break;
                case (byte)'r': memo[U(Take(pickle, ref pos, 4))] = recentStrings.LastOrDefault(); break;
                case 0x94: memo[memo.Count] = recentStrings.LastOrDefault(); break;    // MEMOIZE
                case (byte)'g': Push(memo.GetValueOrDefault(long.Parse(Line(pickle, ref pos)))); break;
                case (byte)'h': Push(memo.GetValueOrDefault(U(Take(pickle, ref pos, 1)))); break;
                case (byte)'j': Push(memo.GetValueOrDefault(U(Take(pickle, ref pos, 4)))); break;
                default:
                    throw new InvalidDataException($"unknown pickle opcode 0x{op:x2} at byte {pos - 1}");
            }
        }
    }
}
