using System.IO.Compression;
using System.Text;
using NUnit.Framework;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// The one reader of PyTorch zip files, in process, on archives crafted here: it reads the pickle torch.load reads,
/// refuses ambiguous archives, foreign globals, malformed pickles and absurd tensors, and caps every read.
/// </summary>
[TestFixture, Category("Robustness")]
public sealed class TorchArchiveTests
{
    string _dir = "";

    [SetUp]
    public void NewDir() => _dir = TempDir.New("archive");

    string P(string name) => Path.Combine(_dir, name);

    static string Refusal(string path) => Assert.Throws<WeightsFileException>(() => TorchArchive.Read(path))!.Message;

    [Test]
    public void A_well_formed_archive_loads_with_its_values()
    {
        var pth = SmallPth(P("ok.pth"));
        var sd = WeightsFile.ReadStateDict(pth);
        Assert.That(sd.Keys, Is.EqualTo(new[] { "w" }));
        Assert.That(sd["w"].shape, Is.EqualTo(new long[] { 2, 2 }));
        Assert.That(sd["w"].data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void The_unpickler_gets_exactly_the_checked_pickle_and_the_storages_it_names()
    {
        // An unreferenced record and a version file stay behind; the re-packed archive has nothing else to pick.
        var pth = Zip(P("extra.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()),
            ("archive/data/99", new byte[64]), ("archive/version", "3\n"u8.ToArray()));
        var archive = TorchArchive.Read(pth);
        Assert.That(archive.Prefix, Is.EqualTo("archive"));
        Assert.That(archive.Pickle, Is.EqualTo(SmallPickle()));
        using var zip = new ZipArchive(archive.SanitizedZip(), ZipArchiveMode.Read);
        Assert.That(zip.Entries.Select(e => e.FullName), Is.EquivalentTo(new[] { "archive/data.pkl", "archive/version", "archive/data/0" }));
        using var ms = new MemoryStream();
        using (var s = zip.GetEntry("archive/data.pkl")!.Open()) s.CopyTo(ms);
        Assert.That(ms.ToArray(), Is.EqualTo(SmallPickle()));
    }

    [Test]
    public void The_pickle_is_the_one_in_the_first_entrys_folder_as_in_torch_load()
    {
        // First entry in "model/": torch.load reads model/data.pkl, and so does the tool.
        var pth = Zip(P("renamed.pth"), ("model/data.pkl", SmallPickle()), ("model/data/0", SmallStorage()));
        Assert.That(TorchArchive.Read(pth).Prefix, Is.EqualTo("model"));
        Assert.That(WeightsFile.ReadStateDict(pth)["w"].data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void A_decoy_archive_is_refused_by_every_reader()
    {
        var marker = P("MARKER");
        var pth = DecoyPth(P("decoy.pth"), marker);
        Assert.That(Refusal(pth), Does.Contain("decoy.pth: the zip file holds another pickle 'archive/a/data.pkl' besides archive/data.pkl, the one torch.load reads; refused as ambiguous"));
        Assert.Throws<WeightsFileException>(() => WeightsInspector.Inspect(pth, 1, 10));
        Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(pth));
        using var model = Model.Models.resnet18(1, 10);
        Assert.Throws<CheckpointException>(() => CheckpointStore.LoadWeights(model, pth));
        Assert.That(File.Exists(marker), Is.False);
    }

    [Test]
    public void A_second_data_pkl_inside_the_folder_is_refused()
    {
        var pth = Zip(P("two.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()),
            ("archive/sub/data.pkl", CallPickle("posix", "system", "true")));
        Assert.That(Refusal(pth), Does.Contain("holds another pickle 'archive/sub/data.pkl' besides archive/data.pkl"));
    }

    [TestCase("archive/../data.pkl")]
    [TestCase("archive/./x")]
    [TestCase("/etc/data")]
    [TestCase("archive\\data\\1")]
    public void Names_that_escape_the_folder_are_refused(string name)
    {
        var pth = Zip(P("escape.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()), (name, new byte[1]));
        Assert.That(Refusal(pth), Does.Contain("escapes the archive folder").Or.Contain("outside the archive folder"));
    }

    [Test]
    public void Duplicate_entry_names_are_refused()
    {
        var pth = Zip(P("dup.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()), ("archive/data/0", new byte[16]));
        Assert.That(Refusal(pth), Does.Contain("two entries named 'archive/data/0'"));
    }

    [Test]
    public void An_entry_outside_the_first_entrys_folder_is_refused()
    {
        var pth = Zip(P("outside.pth"), ("x/version", "3\n"u8.ToArray()), ("archive/data.pkl", SmallPickle()), ("archive/data/0", SmallStorage()));
        Assert.That(Refusal(pth), Does.Contain("zip entry 'archive/data.pkl' is outside the archive folder 'x/' that torch.load reads; refused as ambiguous"));
    }

    [Test]
    public void A_first_entry_outside_any_folder_is_refused()
    {
        var pth = Zip(P("flat.pth"), ("data.pkl", SmallPickle()), ("data/0", SmallStorage()));
        Assert.That(Refusal(pth), Does.Contain("is not inside a folder"));
    }

    [TestCase("posix", "system")]
    [TestCase("builtins", "exec")]
    [TestCase("os", "system")]
    [TestCase("subprocess", "Popen")]
    public void Foreign_globals_are_refused_by_name(string module, string name)
    {
        var pth = Zip(P("evil.pth"), ("archive/data.pkl", CallPickle(module, name, "touch x")));
        Assert.That(Refusal(pth), Does.Contain($"refused: the pickle references {module}.{name}").And.Contain("nothing was executed"));
    }

    [Test]
    public void A_global_assembled_from_memoised_strings_is_named()
    {
        // 'posix' and 'system' pushed, memoised, popped, fetched back with BINGET, then STACK_GLOBAL.
        var w = new PickleWriter();
        w.Str("posix").Op((byte)'q').Op(0).Op((byte)'0').Str("system").Op((byte)'q').Op(1).Op((byte)'0');
        w.Op((byte)'h').Op(0).Op((byte)'h').Op(1).Op(0x93).Mark().Str("true").Op((byte)'t').Op((byte)'R');
        var pth = Zip(P("stack.pth"), ("archive/data.pkl", w.Stop()));
        Assert.That(Refusal(pth), Does.Contain("posix.system"));
    }

    [TestCase("p", "abc\n", "malformed memo key 'abc'")]
    [TestCase("g", "12\n", "memo key 12 is not defined")]
    [TestCase("g", "-1x\n", "malformed memo key '-1x'")]
    public void Malformed_memo_keys_are_one_clear_error(string op, string arg, string expected)
    {
        var w = new PickleWriter();
        w.Op((byte)'N').Raw(op).Raw(arg);
        var pth = Zip(P("memo.pth"), ("archive/data.pkl", w.Stop()));
        var m = Refusal(pth);
        Assert.That(m, Does.StartWith($"{pth}: corrupt archive/data.pkl: ").And.Contain(expected));
    }

    [Test]
    public void Unknown_opcodes_truncation_and_stack_underflow_are_one_clear_error()
    {
        Assert.That(Refusal(Zip(P("op.pth"), ("archive/data.pkl", new byte[] { 0x80, 2, 0xff }))), Does.Contain("unknown pickle opcode 0xff at byte 2"));
        Assert.That(Refusal(Zip(P("cut.pth"), ("archive/data.pkl", SmallPickle()[..20]))), Does.Contain("corrupt archive/data.pkl: pickle truncated"));
        Assert.That(Refusal(Zip(P("under.pth"), ("archive/data.pkl", new byte[] { 0x80, 2, (byte)'0', (byte)'.' }))), Does.Contain("stack underflow"));
    }

    [Test]
    public void A_whole_pickled_model_is_named_as_such()
    {
        var w = new PickleWriter();
        w.Global("torch.nn.modules.linear", "Linear").Op((byte)')').Op((byte)'R');
        Assert.That(Refusal(Zip(P("model.pth"), ("archive/data.pkl", w.Stop()))), Does.EndWith(WeightsFile.WholeModelMessage));
    }

    [Test]
    public void Absurd_tensor_geometry_is_refused_before_any_allocation()
    {
        string Case(string name, long numel, long offset, long[] size, long[] stride) =>
            Refusal(Zip(P(name), ("archive/data.pkl", StateDictPickle(("w", "0", numel, offset, size, stride))), ("archive/data/0", new byte[numel * 4])));
        Assert.That(Case("big.pth", 4, 0, [1L << 40], [1]), Does.Contain("(1099511627776 elements) is larger than its storage '0' (4 elements)"));
        Assert.That(Case("stride.pth", 4, 0, [2, 2], [2, 5]), Does.Contain("reads past its storage '0'"));
        Assert.That(Case("offset.pth", 4, 3, [2], [1]), Does.Contain("offset 3 reads past its storage"));
        Assert.That(Case("overflow.pth", 4, 0, [1L << 32, 1L << 32], [1, 1]), Does.Contain("overflows"));
        Assert.That(Case("dims.pth", 4, 0, Enumerable.Repeat(1L, 65).ToArray(), Enumerable.Repeat(1L, 65).ToArray()), Does.Contain("65 dimensions; allowed: at most 64"));
    }

    [Test]
    public void Storage_records_must_hold_exactly_what_the_pickle_declares()
    {
        var missing = Zip(P("missing.pth"), ("archive/data.pkl", SmallPickle()));
        Assert.That(Refusal(missing), Does.Contain("refers to storage '0' but archive/data/0 is missing"));
        var shorter = Zip(P("short.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", new byte[8]));
        Assert.That(Refusal(shorter), Does.Contain("holds 8 bytes but its tensor storage declares 16"));
        var longer = Zip(P("long.pth"), ("archive/data.pkl", SmallPickle()), ("archive/data/0", new byte[17]));
        Assert.That(Refusal(longer), Does.Contain("holds more than the 16 bytes its tensor storage declares"));
    }

    [Test]
    public void A_storage_larger_than_the_file_allows_is_refused_before_reading_it()
    {
        // 1.5 GB of float32 declared by a file of a few hundred bytes.
        long numel = 400_000_000;
        var pth = Zip(P("huge.pth"), ("archive/data.pkl", StateDictPickle(("w", "0", numel, 0, [numel], [1]))), ("archive/data/0", new byte[4]));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        Assert.That(Refusal(pth), Does.Contain("its tensors need 1.49 GiB, more than allowed for a"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(16L << 20), "bytes allocated while refusing");
    }

    [Test]
    public void A_zip_bomb_pickle_is_refused_at_the_cap_without_decompressing_it_all()
    {
        // data.pkl of 80 MiB (a valid pickle: a long run of NONE/POP pairs) compresses to about 80 KB.
        var pickle = new byte[80 << 20];
        for (int i = 0; i < pickle.Length; i += 2) { pickle[i] = (byte)'N'; pickle[i + 1] = (byte)'0'; }
        var pth = Zip(P("bomb.pth"), ("archive/data.pkl", pickle));
        pickle = null;
        Assert.That(new FileInfo(pth).Length, Is.LessThan(1 << 20));
        GC.Collect();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        Assert.That(Refusal(pth), Does.Contain("zip entry 'archive/data.pkl' decompresses to more than 64 MiB; allowed: at most 64 MiB"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(300L << 20), "bytes allocated while refusing");
    }

    [Test]
    public void Too_many_entries_are_refused()
    {
        var path = P("many.pth");
        using (var fs = File.Create(path))
        using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
        {
            zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open().Dispose();
            for (int i = 0; i <= TorchArchive.MaxEntries; i++) zip.CreateEntry($"archive/data/{i}", CompressionLevel.NoCompression).Open().Dispose();
        }
        Assert.That(Refusal(path), Does.Contain($"entries; allowed: at most {TorchArchive.MaxEntries}"));
    }

    [Test]
    public void Non_zip_and_non_regular_files_are_refused()
    {
        File.WriteAllText(P("text.pth"), "hello");
        Assert.That(Refusal(P("text.pth")), Does.Contain("not a zip file"));
        Assert.That(Refusal("/dev/zero"), Does.Contain("/dev/zero: is not a regular file"));
        Assert.That(Refusal(_dir), Does.Contain("is a directory"));
    }

    [Test]
    public void The_optimizer_and_weights_of_a_real_checkpoint_pass_the_checks()
    {
        using var model = Model.Models.resnet18(1, 10);
        var bytes = CheckpointStore.WeightsBytes(model);
        File.WriteAllBytes(P("real.pt"), bytes);
        var archive = TorchArchive.Read(P("real.pt"));
        Assert.That(archive.Summary.Tensors, Has.Count.EqualTo(model.state_dict().Count));
        using var copy = Model.Models.resnet18(1, 10);
        CheckpointStore.LoadWeights(copy, P("real.pt"));
        foreach (var (k, t) in model.state_dict()) Assert.That(t.allclose(copy.state_dict()[k], 0, 0), k);
    }
}
