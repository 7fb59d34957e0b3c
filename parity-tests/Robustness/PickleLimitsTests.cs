using System.Text;
using NUnit.Framework;
using ResnetMnist.Core;
using ResnetMnist.Data;
using ResnetMnist.Weights;
using StateDictPolicy = ResnetMnist.Weights.StateDictPickle;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// The caps of the one pickle machine, on small files crafted to make an unbounded unpickler allocate gigabytes or
/// run for minutes: each is refused with one line (exit 2) naming the file and the cap. The memory and time each
/// takes were measured with /usr/bin/time on the tool, not asserted here.
/// </summary>
[TestFixture, Category("Robustness")]
public sealed class PickleLimitsTests
{
    string _dir = "";

    [SetUp]
    public void NewDir() => _dir = TempDir.New("limits");

    string P(string name) => Path.Combine(_dir, name);

    static byte[] Repeat(byte[] head, byte op, int count, byte[] tail)
    {
        var b = new byte[head.Length + count + tail.Length];
        head.CopyTo(b, 0);
        b.AsSpan(head.Length, count).Fill(op);
        tail.CopyTo(b, head.Length + count);
        return b;
    }

    static readonly byte[] Proto2 = [0x80, 2];

    /// <summary>The tool refuses <paramref name="pth"/> in <c>weights inspect</c>: exit 2, one line naming it and holding <paramref name="fragment"/>.</summary>
    static void AssertToolRefuses(string pth, string fragment)
    {
        var r = Tool.Run(Path.GetDirectoryName(pth)!, ["weights", "inspect", pth]);
        Tool.AssertOneErrorLine(r, 2, fragment);
        Assert.That(r.Stderr, Does.Contain(Path.GetFileName(pth)));
        Assert.That(r.Stderr.Length, Is.LessThan(2000), "the line stays short");
    }

    [Test]
    public void A_64_KB_pt_of_63_MiB_of_EMPTY_DICT_is_refused_at_the_value_cap()
    {
        var pth = Zip(P("dicts.pt"), ("archive/data.pkl", Repeat(Proto2, (byte)'}', 63 << 20, [(byte)'.'])));
        Assert.That(new FileInfo(pth).Length, Is.LessThan(128 << 10), "the crafted file is small");
        AssertToolRefuses(pth, $"refused: archive/data.pkl: too many values (allowed: at most {StateDictPolicy.StateDictLimits.MaxValues} in a state_dict)");
    }

    [Test]
    public void Two_hundred_thousand_distinct_globals_are_refused_at_the_global_cap()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 200_000; i++) sb.Append($"cm{i}\nn{i}\n0");
        var pkl = Proto2.Concat(Encoding.ASCII.GetBytes(sb.ToString())).Concat("N."u8.ToArray()).ToArray();
        var pth = Zip(P("globals.pt"), ("archive/data.pkl", pkl));
        AssertToolRefuses(pth, $"too many distinct globals (allowed: at most {StateDictPolicy.StateDictLimits.MaxGlobals} in a state_dict)");
    }

    [Test]
    public void Distinct_globals_under_the_cap_are_all_named_once()
    {
        // 1,000 distinct foreign globals, each named 20 times: the refusal lists the first 8 and counts the rest.
        var w = new PickleWriter();
        for (int k = 0; k < 20; k++)
            for (int i = 0; i < 1000; i++) w.Global($"m{i}", "f").Op((byte)'0');
        var pth = Zip(P("many.pt"), ("archive/data.pkl", w.Op((byte)'N').Stop()));
        var e = Assert.Throws<WeightsFileException>(() => TorchArchive.Read(pth))!;
        Assert.That(e.Message, Does.Contain("m0.f, m1.f, m2.f, m3.f, m4.f, m5.f, m6.f, m7.f and 992 more"));
    }

    [Test]
    public void A_global_named_with_50_MiB_is_refused_with_a_short_escaped_line()
    {
        var name = new byte[50 << 20];
        name.AsSpan().Fill((byte)'a');
        name[10] = 0x1b;                                                   // ESC: shown escaped, never raw
        var pkl = Proto2.Concat("c"u8.ToArray()).Concat(name).Concat("\nb\n0N."u8.ToArray()).ToArray();
        var pth = Zip(P("longname.pt"), ("archive/data.pkl", pkl));
        Assert.That(new FileInfo(pth).Length, Is.LessThan(128 << 10));
        AssertToolRefuses(pth, "a global's module too long ('aaaaaaaaaa\\x1baaaa");
    }

    [Test]
    public void A_global_name_too_long_through_STACK_GLOBAL_is_refused()
    {
        var w = new PickleWriter();
        w.Str(new string('m', 300)).Str("f").Op(0x93).Op((byte)'0').Op((byte)'N');
        var e = Assert.Throws<WeightsFileException>(() => TorchArchive.Read(Zip(P("stack.pt"), ("archive/data.pkl", w.Stop()))))!;
        Assert.That(e.Message, Does.Contain($"a global whose module or name has too many characters").And.Contain("allowed: at most 256"));
        Assert.That(e.Message.Length, Is.LessThan(400));
    }

    [Test]
    public void Other_caps_each_refuse_with_their_name()
    {
        var cases = new (string Name, byte[] Pickle, string Expected)[]
        {
            // DUP adds no value, so only the opcode cap stops this.
            ("opcodes", Proto2.Concat("N"u8.ToArray()).Concat(Enumerable.Repeat("20"u8.ToArray(), (4 << 20) / 2 + 1).SelectMany(b => b)).Concat("."u8.ToArray()).ToArray(), "too many opcodes"),
            ("memo", Proto2.Concat("N"u8.ToArray()).Concat(Enumerable.Range(0, (1 << 20) + 1).SelectMany(i => new byte[] { (byte)'r' }.Concat(BitConverter.GetBytes(i)))).Concat("."u8.ToArray()).ToArray(), "too many memo entries"),
            ("items", Repeat([0x80, 2, (byte)']', (byte)'(', (byte)'N'], (byte)'2', 1 << 20, "e."u8.ToArray()), "a list with too many elements"),
            ("text", Proto2.Concat(new byte[] { (byte)'X' }).Concat(BitConverter.GetBytes(17 << 20)).Concat(new byte[17 << 20]).Concat("."u8.ToArray()).ToArray(), "too many characters of text and bytes objects"),
            ("depth", Repeat(Proto2, (byte)']', 70, Enumerable.Repeat((byte)'a', 69).Append((byte)'.').ToArray()), "containers nested too deep"),
            ("marks", Repeat(Proto2, (byte)'(', 70, []), "MARKs nested too deep"),
        };
        foreach (var (name, pickle, expected) in cases)
        {
            var e = Assert.Throws<WeightsFileException>(() => TorchArchive.Read(Zip(P(name + ".pt"), ("archive/data.pkl", pickle))), name)!;
            Assert.That(e.Message, Does.StartWith(P(name + ".pt") + ": refused: archive/data.pkl: " + expected).And.Contain("nothing was executed"), name);
            Assert.That(e.Message, Does.Not.Contain("\n"), name);
        }
    }

    [TestCase((byte)'}', 32 << 20, "dict"), TestCase((byte)']', 16 << 20, "list")]
    public void A_CIFAR_batch_of_empty_containers_is_refused_at_the_value_cap(byte op, int count, string what)
    {
        var dir = Directory.CreateDirectory(P("cifar-10-batches-py")).FullName;
        var path = Path.Combine(dir, "data_batch_1");
        File.WriteAllBytes(path, Repeat(Proto2, op, count, [(byte)'.']));
        var e = Assert.Throws<DataException>(() => CifarFiles.Cifar10.ReadBatch(path), what)!;
        Assert.That(e.ExitCode, Is.EqualTo(2));
        Assert.That(e.Message, Does.StartWith($"{path}: too many values (allowed: at most {RestrictedUnpickler.LimitsFor(count + 3).MaxValues} in a CIFAR file) at byte "));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }
}
