using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Data;
using ResnetMnist.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Data;

/// <summary>
/// CIFAR-10 and CIFAR-100: each fixture (parity-tests/data/cifar10-fixture and cifar100-fixture, written by
/// reference/make_cifar_fixture.py and make_cifar100_fixture.py) reads to what torchvision.datasets.CIFAR10/CIFAR100
/// gives (reference/snapshots/&lt;dataset&gt;/dataset.json, from reference/make_cifar_snapshots.py);
/// foreign or malformed pickles and unsafe archives are refused with one line; RandomCrop(32, 4) + RandomHorizontalFlip
/// over DataLoader(shuffle) batches equals torchvision's, byte for byte (augment.json). The comparisons with
/// torchvision (reading, augmentation) are in the Parity category, so that they run under every kernel set; the
/// refusals and the batched-work check are Robustness.
/// </summary>
[TestFixture, Category("Data"), NonParallelizable]
public sealed class CifarTests
{
    static string Fixture(params string[] parts) => FixtureOf("cifar10", parts);

    /// <summary>A file of <paramref name="dataset"/>'s fixture (<c>parity-tests/data/&lt;dataset&gt;-fixture</c>).</summary>
    static string FixtureOf(string dataset, params string[] parts) => Repo.Path(["parity-tests", "data", $"{dataset}-fixture", .. parts]);

    static DatasetSpec Spec(string dataset) => DatasetSpecs.Get(dataset);
    static CifarFiles Files(string dataset) => (CifarFiles)Spec(dataset).Files;

    static JsonElement Committed(string name, string dataset = "cifar10") =>
        JsonDocument.Parse(File.ReadAllText(Repo.Path("reference", "snapshots", dataset, name))).RootElement;

    static readonly Dictionary<string, string> LiveDirs = [];

    [OneTimeTearDown]
    public void RemoveLiveDirs()
    {
        foreach (var dir in LiveDirs.Values) try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>What make_cifar_snapshots.py writes now, with the real torchvision, for <paramref name="dataset"/>'s fixture.</summary>
    static JsonElement Live(string name, string dataset = "cifar10")
    {
        Python.RequireTorch();
        if (!LiveDirs.TryGetValue(dataset, out var dir))
        {
            dir = Directory.CreateTempSubdirectory("resnet-mnist-cifar-live-").FullName;
            Python.Run(File.ReadAllText(Repo.Path("reference", "make_cifar_snapshots.py")), FixtureOf(dataset), dir);
            LiveDirs[dataset] = dir;
        }
        return JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name))).RootElement;
    }

    /// <summary>A split as the tool reads it (<see cref="ImageSplit.Load"/>: bytes N×3×32×32, int64 labels) and the meta file's class names.</summary>
    sealed class CifarSplit(ImageSplit data, IReadOnlyList<string> classes) : IDisposable
    {
        public Tensor Pixels => data.Pixels;
        public Tensor Labels => data.Labels;
        public int Count => data.Count;
        public IReadOnlyList<string> Classes { get; } = classes;
        public void Dispose() => data.Dispose();
    }

    static CifarSplit Load(string root, bool train, int? numClasses = null, int? limit = null, string dataset = "cifar10")
    {
        var split = ImageSplit.Load(Spec(dataset), root, train, limit, numClasses ?? Spec(dataset).NumClasses, normalize: false, ScalarType.Float32, CPU);
        try { return new CifarSplit(split, Files(dataset).ReadClasses(root)); }
        catch { split.Dispose(); throw; }
    }

    static string Sha256(Tensor uint8) => Convert.ToHexStringLower(SHA256.HashData(uint8.contiguous().data<byte>().ToArray()));

    // ---------------------------------------------------------------- (a) reading

    static void AssertSplit(JsonElement snap, CifarSplit split, string what)
    {
        Assert.That(split.Count, Is.EqualTo(snap.GetProperty("count").GetInt32()), $"{what}: count");
        Assert.That(split.Pixels.shape, Is.EqualTo(new long[] { split.Count, 3, 32, 32 }), $"{what}: shape");
        Assert.That(split.Pixels.dtype, Is.EqualTo(ScalarType.Byte));
        Assert.That(split.Labels.dtype, Is.EqualTo(ScalarType.Int64));
        Assert.That(split.Labels.data<long>().ToArray(), Is.EqualTo(snap.GetProperty("labels").EnumerateArray().Select(e => e.GetInt64()).ToArray()), $"{what}: labels");
        using var flat = split.Pixels.reshape(split.Count, 3072);
        using var sums = flat.to_type(ScalarType.Int64).sum(1);
        Assert.That(sums.data<long>().ToArray(), Is.EqualTo(snap.GetProperty("sums").EnumerateArray().Select(e => e.GetInt64()).ToArray()), $"{what}: per-image sums");
        foreach (var p in snap.GetProperty("pixels").EnumerateObject())
        {
            using var col = flat[.., int.Parse(p.Name)].to_type(ScalarType.Int64);
            Assert.That(col.data<long>().ToArray(), Is.EqualTo(p.Value.EnumerateArray().Select(e => e.GetInt64()).ToArray()), $"{what}: pixel {p.Name}");
        }
        Assert.That(Sha256(split.Pixels), Is.EqualTo(snap.GetProperty("sha256").GetString()), $"{what}: sha256 of the CHW bytes");
        Assert.That(split.Classes, Is.EqualTo(snap.GetProperty("classes").EnumerateArray().Select(e => e.GetString()).ToArray()), $"{what}: classes");
    }

    static void AssertDataset(JsonElement snap, string root, string dataset = "cifar10")
    {
        foreach (var (name, train) in new[] { ("train", true), ("test", false) })
        {
            using var split = Load(root, train, dataset: dataset);
            AssertSplit(snap.GetProperty(name), split, $"{root} {name}");
        }
    }

    [TestCase("cifar10", "p2"), TestCase("cifar10", "p4"), TestCase("cifar100", "p2"), Category("Parity")]
    public void Fixture_reads_as_torchvision_reads_it(string dataset, string variant) =>
        AssertDataset(Committed("dataset.json", dataset), FixtureOf(dataset, variant), dataset);

    [TestCase("cifar10"), TestCase("cifar100"), Category("Parity")]
    public void Archive_extracts_and_reads_as_torchvision_reads_it(string dataset)
    {
        using var tmp = new TempDir();
        var files = Files(dataset);
        TarGzArchive.Extract(FixtureOf(dataset, files.ArchiveName), tmp.Path, files.Folder);
        Assert.That(Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName), Is.EqualTo(new[] { files.Folder }), "nothing but the folder is left in ROOT");
        foreach (var f in Directory.GetFiles(FixtureOf(dataset, "p2", files.Folder)))
            Assert.That(File.ReadAllBytes(Path.Combine(tmp.Path, files.Folder, Path.GetFileName(f))), Is.EqualTo(File.ReadAllBytes(f)), f);
        AssertDataset(Committed("dataset.json", dataset), tmp.Path, dataset);
    }

    [Test, Category("Parity")]
    public void Limit_keeps_the_first_images_across_batches()
    {
        using var all = Load(Fixture("p2"), train: true);
        using var some = Load(Fixture("p2"), train: true, limit: 25);
        Assert.That(some.Count, Is.EqualTo(25));
        using var head = all.Pixels.narrow(0, 0, 25);
        Assert.That(some.Pixels.data<byte>().ToArray(), Is.EqualTo(head.data<byte>().ToArray()));
        Assert.That(some.Labels.data<long>().ToArray(), Is.EqualTo(all.Labels.data<long>().Take(25).ToArray()));
    }

    [Test, Category("Parity")]
    public void Label_outside_the_classes_is_refused()
    {
        var e = Assert.Throws<DataException>(() => Load(Fixture("p2"), train: true, numClasses: 5))!;
        AssertOneLine(e, "data_batch_1: label", "outside 0..4", "model.num_classes: 5");
    }

    [TestCase("cifar10"), TestCase("cifar100"), Category("Parity")]
    public void Archive_in_root_is_extracted_when_the_folder_is_missing(string dataset)
    {
        using var tmp = new TempDir();
        var files = Files(dataset);
        File.Copy(FixtureOf(dataset, files.ArchiveName), Path.Combine(tmp.Path, files.ArchiveName));
        var e = Assert.Throws<DataException>(() => files.ExtractIfNeeded(tmp.Path))!;
        AssertOneLine(e, "md5", files.ArchiveMd5);
        Assert.That(files.ExtractIfNeeded(tmp.Path, checkMd5: false), Is.True);
        Assert.That(files.ExtractIfNeeded(tmp.Path, checkMd5: false), Is.False, "already extracted");
        AssertDataset(Committed("dataset.json", dataset), tmp.Path, dataset);
    }

    [Test, Category("Parity")]
    public void Archive_md5_is_checked_when_asked()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<DataException>(() => TarGzArchive.Extract(Fixture("cifar-10-python.tar.gz"), tmp.Path, "cifar-10-batches-py", CifarFiles.Cifar10.ArchiveMd5))!;
        AssertOneLine(e, "cifar-10-python.tar.gz", "md5");
        Assert.That(Directory.Exists(Path.Combine(tmp.Path, "cifar-10-batches-py")), Is.False);
        TarGzArchive.Extract(Fixture("cifar-10-python.tar.gz"), tmp.Path, "cifar-10-batches-py", DatasetFetcher.Md5Of(Fixture("cifar-10-python.tar.gz")));
        Assert.That(File.Exists(Path.Combine(tmp.Path, "cifar-10-batches-py", "test_batch")));
    }

    [TestCase("test_batch_head.py3.p2"), TestCase("test_batch_head.py3.p3"), TestCase("test_batch_head.py3.p5"), Category("Parity")]
    public void Python3_repickled_batches_read_the_same(string file)
    {
        // Protocol 2 from Python 3 carries bytes as _codecs.encode(text, 'latin1'); 3 and 5 as BINBYTES.
        var reference = CifarFiles.Cifar10.ReadBatch(Fixture("p2", "cifar-10-batches-py", "test_batch"));
        var b = CifarFiles.Cifar10.ReadBatch(Fixture("extra", file));
        Assert.That(b.Count, Is.EqualTo(4));
        Assert.That(b.Labels, Is.EqualTo(reference.Labels.Take(4).ToArray()));
        Assert.That(b.Pixels, Is.EqualTo(reference.Pixels.Take(4 * 3072).ToArray()));
    }

    [Test, Category("Parity")]
    public void Numpy2_module_name_is_accepted()
    {
        // numpy 2 pickles name numpy._core.multiarray._reconstruct; GLOBAL names are text lines, so a byte edit makes one.
        var p2 = File.ReadAllBytes(Fixture("p2", "cifar-10-batches-py", "test_batch"));
        var edited = Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(p2).Replace("cnumpy.core.multiarray\n", "cnumpy._core.multiarray\n"));
        Assert.That(edited.Length, Is.EqualTo(p2.Length + 1));
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.Sub("test_batch"), edited);
        Assert.That(CifarFiles.Cifar10.ReadBatch(tmp.Sub("test_batch")).Pixels, Is.EqualTo(CifarFiles.Cifar10.ReadBatch(Fixture("p2", "cifar-10-batches-py", "test_batch")).Pixels));
    }

    [Test, Category("Parity")]
    public void Foreign_global_name_with_control_characters_stays_one_line()
    {
        using var tmp = new TempDir();
        var path = tmp.Sub("evil");
        File.WriteAllBytes(path, Cat("\u0080\u0002cos\rrm -rf\u001b[2J\nsystem\n)R."));
        var e = Assert.Throws<DataException>(() => RestrictedUnpickler.Load(path))!;
        AssertOneLine(e, path, "refers to global");
        Assert.That(e.Message.Any(char.IsControl), Is.False, e.Message);
    }

    [Test, Category("Parity")]
    public void File_list_and_md5s_are_torchvisions()
    {
        var f = CifarFiles.Cifar10;
        Assert.That(f.Url, Is.EqualTo("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"));
        Assert.That(f.ArchiveMd5, Is.EqualTo("c58f30108f718f92721af3b95e74349a"));
        Assert.That(f.Batches(true), Is.EqualTo(new[] { "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5" }));
        Assert.That(f.Md5["test_batch"], Is.EqualTo("40351d587109b95175f43aff81a1287e"));
        Assert.That(f.Md5["batches.meta"], Is.EqualTo("5ff9c542aee3614f3951f8cda6e48888"));
        Assert.That(f.Md5, Has.Count.EqualTo(7));
    }

    [Test, Category("Parity")]
    public void Cifar100_file_list_md5s_and_classes_are_torchvisions()
    {
        // torchvision 0.14's CIFAR100 (datasets/cifar.py): base_folder, url, filename, tgz_md5, train_list, test_list, meta.
        var f = CifarFiles.Cifar100;
        Assert.That((f.Folder, f.Url, f.ArchiveName, f.ArchiveMd5), Is.EqualTo(("cifar-100-python",
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")));
        Assert.That(f.Md5, Is.EqualTo(new Dictionary<string, string>
        {
            ["train"] = "16019d7e3df5f24257cddd939b257f8d", ["test"] = "f0ef6b0ae62326f3e7ffdfab6717acfc", ["meta"] = "7973b15100ade9c7d40fb424638fde48",
        }));
        Assert.That((f.MetaKey, f.LabelKey), Is.EqualTo(("fine_label_names", "fine_labels")));
        var spec = DatasetSpecs.Cifar100;
        Assert.That((spec.NumClasses, spec.Channels, spec.Height, spec.Width), Is.EqualTo((100, 3, 32, 32)));
        Assert.That(spec.ClassNames, Is.Unique.And.Ordered, "CIFAR-100's fine label names are listed alphabetically");
        Assert.That(spec.Augmentation, Is.EqualTo(DatasetSpecs.Cifar10.Augmentation), "the same augmentation as CIFAR-10");
    }

    [TestCase("cifar10"), TestCase("cifar100"), Category("NeedsPyTorch"), Category("Parity")]
    public void Fixture_reads_as_live_torchvision_reads_it(string dataset)
    {
        var live = Live("dataset.json", dataset);
        Assert.That(live.GetRawText(), Is.EqualTo(Committed("dataset.json", dataset).GetRawText()), "the committed snapshot is what torchvision gives now");
        foreach (var variant in new[] { "p2", "p4" })
            if (Directory.Exists(FixtureOf(dataset, variant))) AssertDataset(live, FixtureOf(dataset, variant), dataset);
    }

    // ---------------------------------------------------------------- (b) refusals

    static void AssertOneLine(Exception e, params string[] parts)
    {
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
        foreach (var p in parts) Assert.That(e.Message, Does.Contain(p));
    }

    static byte[] Cat(params object[] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts)
            ms.Write(p switch { byte[] b => b, string s => Encoding.Latin1.GetBytes(s), byte b => [b], _ => throw new ArgumentException() });
        return ms.ToArray();
    }

    static byte[] BinUnicode(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return Cat((byte)'X', BitConverter.GetBytes(b.Length), b);
    }

    /// <summary>{'data': CALL(cmd), 'labels': []} where CALL is a foreign global reached by <paramref name="how"/>.</summary>
    static byte[] ForeignPickle(string how, string marker) => how switch
    {
        "os.system GLOBAL" => Cat("\u0080\u0002}(U\u0004data", "cos\nsystem\n", BinUnicode("touch " + marker), "\u0085R", "U\u0006labels]u."),
        "os.system STACK_GLOBAL" => Cat("\u0080\u0004}(\u008c\u0004data", "\u008c\u0002os\u0094\u008c\u0006system\u0094\u0093", BinUnicode("touch " + marker), "\u0085R", "\u008c\u0006labels]u."),
        "builtins.eval" => Cat("\u0080\u0002}(U\u0004data", "cbuiltins\neval\n", BinUnicode($"__import__('os').system('touch {marker}')"), "\u0085R", "U\u0006labels]u."),
        _ => throw new ArgumentException(how),
    };

    [TestCase("os.system GLOBAL", "os.system"), TestCase("os.system STACK_GLOBAL", "os.system"), TestCase("builtins.eval", "builtins.eval"), Category("Robustness")]
    public void Foreign_global_is_refused_without_running_it(string how, string global)
    {
        using var tmp = new TempDir();
        var marker = tmp.Sub("PWNED");
        var dir = Directory.CreateDirectory(tmp.Sub("cifar-10-batches-py")).FullName;
        var path = Path.Combine(dir, "data_batch_1");
        File.WriteAllBytes(path, ForeignPickle(how, marker));
        var e = Assert.Throws<DataException>(() => CifarFiles.Cifar10.ReadBatch(path))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: refers to global '{global}'; a CIFAR file holds only numpy arrays, lists and dicts"));
        Assert.That(e.ExitCode, Is.EqualTo(2));
        var e2 = Assert.Throws<DataException>(() => Load(tmp.Path, train: true))!;
        AssertOneLine(e2, path, global);
        Assert.That(File.Exists(marker), Is.False, "the pickle's payload ran");
    }

    [Test, Category("Robustness")]
    public void Foreign_pickles_would_run_their_payload_in_python()
    {
        // Proves the crafted payloads are real: plain Python's pickle runs them (only /usr/bin/python3 needed).
        if (!File.Exists(Python.Exe)) Assert.Ignore($"{Python.Exe} not found");
        using var tmp = new TempDir();
        foreach (var how in new[] { "os.system GLOBAL", "os.system STACK_GLOBAL", "builtins.eval" })
        {
            var marker = tmp.Sub("ran-" + how.Replace(' ', '_'));
            var file = tmp.Sub("evil.pkl");
            File.WriteAllBytes(file, ForeignPickle(how, marker));
            using var p = System.Diagnostics.Process.Start(Python.Exe, ["-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'), encoding='latin1')", file])!;
            p.WaitForExit();
            Assert.That(File.Exists(marker), Is.True, $"{how}: Python did not run the payload (exit {p.ExitCode})");
        }
    }

    static byte[] Batch1(string variant) => File.ReadAllBytes(Fixture(variant, "cifar-10-batches-py", "data_batch_1"));

    [TestCase("p2"), TestCase("p4"), Category("Robustness")]
    public void Truncated_file_is_refused(string variant)
    {
        var full = Batch1(variant);
        using var tmp = new TempDir();
        foreach (int keep in new[] { 0, 1, 2, 10, 100, 200, full.Length / 2, full.Length - 2, full.Length - 1 })
        {
            var path = tmp.Sub($"cut{keep}");
            File.WriteAllBytes(path, full.AsSpan(0, keep).ToArray());
            var e = Assert.Throws<DataException>(() => CifarFiles.Cifar10.ReadBatch(path), $"cut at {keep}")!;
            AssertOneLine(e, path);
        }
    }

    /// <summary>A protocol-2 batch as Python 2 wrote it, with any shape, dtype code and data.</summary>
    static byte[] NumpyBatch(long[] shape, string dtype, byte[] data, int labels, bool fortran = false) =>
        NumpyBatch(shape, dtype, data, Enumerable.Repeat(1L, labels).ToArray(), fortran);

    /// <summary>The same with the labels given (each written as BININT, so negative ones too).</summary>
    static byte[] NumpyBatch(long[] shape, string dtype, byte[] data, long[] labelValues, bool fortran = false)
    {
        var ms = new MemoryStream();
        void W(params object[] parts) => ms.Write(Cat(parts));
        W("\u0080\u0002}(U\u0004data", "cnumpy.core.multiarray\n_reconstruct\n", "cnumpy\nndarray\n", "K\u0000\u0085U\u0001b\u0087R");
        W("(K\u0001(");
        foreach (var d in shape) W("J", BitConverter.GetBytes((int)d));
        W("t", "cnumpy\ndtype\n", (byte)'U', (byte)dtype.Length, dtype, "K\u0000K\u0001\u0087R", "(K\u0003U\u0001|NNNJ\u00ff\u00ff\u00ff\u00ffJ\u00ff\u00ff\u00ff\u00ffK\u0000tb");
        W(fortran ? "\u0088" : "\u0089", (byte)'T', BitConverter.GetBytes(data.Length), data, "tb");
        W("U\u0006labels](");
        foreach (var v in labelValues) W("J", BitConverter.GetBytes((int)v));
        W("eu.");
        return ms.ToArray();
    }

    [Test, Category("Robustness")]
    public void Crafted_batch_writer_matches_the_fixture_format()
    {
        using var tmp = new TempDir();
        var path = tmp.Sub("ok");
        File.WriteAllBytes(path, NumpyBatch([2, 3072], "u1", new byte[2 * 3072], 2));
        var b = CifarFiles.Cifar10.ReadBatch(path);
        Assert.That((b.Count, b.Labels), Is.EqualTo((2, new long[] { 1, 1 })));
    }

    [Test, Category("Robustness")]
    public void Fortran_order_array_reads_row_major()
    {
        using var tmp = new TempDir();
        var path = tmp.Sub("data_batch_1");
        var rowMajor = Enumerable.Range(0, 3 * 3072).Select(i => (byte)(i * 7 % 251)).ToArray();
        var colMajor = new byte[rowMajor.Length];
        for (int n = 0; n < 3; n++) for (int k = 0; k < 3072; k++) colMajor[k * 3 + n] = rowMajor[n * 3072 + k];
        File.WriteAllBytes(path, NumpyBatch([3, 3072], "u1", colMajor, 3, fortran: true));
        Assert.That(CifarFiles.Cifar10.ReadBatch(path).Pixels, Is.EqualTo(rowMajor));
    }

    [TestCase(new long[] { 2, 1024 }, "u1", 2 * 1024, 2, "shape (2, 1024)")]
    [TestCase(new long[] { 2, 3, 1024 }, "u1", 2 * 3072, 2, "shape (2, 3, 1024)")]
    [TestCase(new long[] { 2, 3072 }, "f4", 2 * 3072 * 4, 2, "dtype 'f4'")]
    [TestCase(new long[] { 2, 3072 }, "u1", 2 * 3072 - 1, 2, "needs 6144 bytes")]
    [TestCase(new long[] { 2, 3072 }, "u1", 2 * 3072, 3, "2 images but 3 labels")]
    [TestCase(new long[] { 0x7fffffff, 0x7fffffff }, "u1", 10, 2, "overflows")]
    [TestCase(new long[] { 0x7fffffff, 3072 }, "u1", 10, 2, "overflows")]
    [TestCase(new long[] { 100000, 3072 }, "u1", 10, 2, "needs 307200000 bytes but its data has 10"), Category("Robustness")]
    public void Malformed_array_is_refused(long[] shape, string dtype, int bytes, int labels, string expected)
    {
        using var tmp = new TempDir();
        var path = tmp.Sub("data_batch_1");
        File.WriteAllBytes(path, NumpyBatch(shape, dtype, new byte[bytes], labels));
        var e = Assert.Throws<DataException>(() => CifarFiles.Cifar10.ReadBatch(path))!;
        AssertOneLine(e, path, expected);
    }

    [Test, Category("Robustness")]
    public void Absurd_lengths_are_refused_before_allocating()
    {
        using var tmp = new TempDir();
        foreach (var (name, bytes) in new[]
        {
            ("binstring", Cat("\u0080\u0002}(U\u0004dataT\u00ff\u00ff\u00ff\u007f")),
            ("binunicode8", Cat("\u0080\u0004\u008d\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u007f")),
            ("binbytes", Cat("\u0080\u0003B\u00ff\u00ff\u00ff\u00ff")),
            ("long4", Cat("\u0080\u0002\u008b\u00ff\u00ff\u00ff\u007f")),
            ("memo", Cat("\u0080\u0002h\u0005.")),
            ("underflow", Cat("\u0080\u0002R.")),
            ("newobj", Cat("\u0080\u0002cnumpy\nndarray\n)\u0081.")),
            ("reduce of ndarray", Cat("\u0080\u0002cnumpy\nndarray\n)R.")),
            ("build on a dict", Cat("\u0080\u0002}}b.")),
            ("float", Cat("\u0080\u0002G\u0040\u0000\u0000\u0000\u0000\u0000\u0000\u0000.")),
            ("no stop", Cat("\u0080\u0002}")),
            ("two values", Cat("\u0080\u0002}}.")),
            ("unfinished array", Cat("\u0080\u0002cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\u0000\u0085U\u0001b\u0087R.")),
        })
        {
            var path = tmp.Sub(name);
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<DataException>(() => RestrictedUnpickler.Load(path), name)!;
            AssertOneLine(e, path);
        }
    }

    // ---------------------------------------------------------------- (c) labels, Python 3 pickles, batches.meta

    /// <summary>A copy of the p2 fixture's folder under a fresh root.</summary>
    static string FixtureCopy(TempDir tmp)
    {
        var dir = Directory.CreateDirectory(tmp.Sub("cifar-10-batches-py")).FullName;
        foreach (var f in Directory.GetFiles(Fixture("p2", "cifar-10-batches-py"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [TestCase(10, "outside 0..9 (model.num_classes: 10)"), TestCase(-1, "outside 0..255")]
    public void A_bad_label_is_blamed_on_its_own_batch(long label, string expected)
    {
        using var tmp = new TempDir();
        var dir = FixtureCopy(tmp);
        var batch3 = Path.Combine(dir, "data_batch_3");
        File.WriteAllBytes(batch3, NumpyBatch([3, 3072], "u1", new byte[3 * 3072], [0L, 1L, label]));
        var e = Assert.Throws<DataException>(() => Load(tmp.Path, train: true, numClasses: 10))!;
        AssertOneLine(e, $"{batch3}: label {label} at index 2 is {expected}");
        Assert.That(e.ExitCode, Is.EqualTo(2));
    }

    [Test]
    public void Empty_batches_pickled_by_Python_3_with_numpy_are_read()
    {
        // pickle.dump from Python 3 (protocol 2 names bytes() as __builtin__.bytes, or builtins.bytes without fix_imports).
        if (!File.Exists(Python.Exe)) Assert.Ignore($"{Python.Exe} not found");
        Python.RequireModule("numpy", "python3-numpy");
        using var tmp = new TempDir();
        var script = "import pickle, sys, numpy as np\n" +
            "d = {'batch_label': 'empty', 'labels': [], 'data': np.zeros((0, 3072), np.uint8), 'filenames': []}\n" +
            "for p in (2, 3, 4, 5): pickle.dump(d, open(f'{sys.argv[1]}/p{p}', 'wb'), protocol=p)\n" +
            "pickle.dump(d, open(f'{sys.argv[1]}/p2-nofix', 'wb'), protocol=2, fix_imports=False)\n";
        using (var p = System.Diagnostics.Process.Start(Python.Exe, ["-c", script, tmp.Path])!) { p.WaitForExit(); Assert.That(p.ExitCode, Is.Zero); }
        Assert.That(File.ReadAllText(tmp.Sub("p2")), Does.Contain("__builtin__\nbytes"), "the case the reader must accept");
        Assert.That(File.ReadAllText(tmp.Sub("p2-nofix")), Does.Contain("builtins\nbytes"));
        foreach (var name in new[] { "p2", "p3", "p4", "p5", "p2-nofix" })
        {
            var b = CifarFiles.Cifar10.ReadBatch(tmp.Sub(name));
            Assert.That((b.Count, b.Labels.Length, b.Pixels.Length), Is.EqualTo((0, 0, 0)), name);
        }
    }

    [TestCase("p2"), TestCase("p4")]
    public void Batches_meta_is_read_whole(string variant)
    {
        var meta = CifarFiles.Cifar10.ReadMeta(Fixture(variant, "cifar-10-batches-py", "batches.meta"));
        Assert.That(meta.LabelNames, Is.EqualTo(new[] { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }));
        Assert.That((meta.NumCasesPerBatch, meta.NumVis), Is.EqualTo(((long?)18, (long?)3072)));
    }

    [TestCase("\u0080\u0002}(U\u000blabel_names]U\u0003fooaU\u0005extraK\u0001u.", "key 'extra' is not part of CIFAR-10 metadata; allowed: label_names, num_cases_per_batch, num_vis")]
    [TestCase("\u0080\u0002}(U\u000blabel_names]K\u0001aU\u0007num_visK\u0001u.", "label_names[0] is a int; expected a list of str")]
    [TestCase("\u0080\u0002}(U\u000blabel_names]U\u0007num_visU\u0001xu.", "'num_vis' is a str; expected an int >= 0")]
    [TestCase("\u0080\u0002}(U\u0007num_visK\u0001u.", "not CIFAR-10 metadata (no list 'label_names')")]
    [TestCase("\u0080\u0002]." , "not CIFAR-10 metadata (the pickle holds no dict)")]
    public void Batches_meta_holding_anything_else_is_refused(string pickle, string expected)
    {
        using var tmp = new TempDir();
        var path = tmp.Sub("batches.meta");
        File.WriteAllBytes(path, Cat(pickle));
        var e = Assert.Throws<DataException>(() => CifarFiles.Cifar10.ReadMeta(path))!;
        AssertOneLine(e, $"{path}: {expected}");
    }

    static string Tgz(string path, Action<TarWriter> write)
    {
        using var f = File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        using (var tar = new TarWriter(gz, TarEntryFormat.Gnu, leaveOpen: true)) write(tar);
        return path;
    }

    static void AddFile(TarWriter tar, string name, byte[] content) =>
        tar.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });

    [TestCase("dotdot"), TestCase("symlink"), TestCase("hardlink"), TestCase("absolute"), TestCase("outside"), TestCase("nested"), TestCase("fifo"), Category("Robustness")]
    public void Unsafe_archive_is_refused_and_leaves_nothing(string kind)
    {
        using var tmp = new TempDir();
        var root = Directory.CreateDirectory(tmp.Sub("root")).FullName;
        var archive = Tgz(tmp.Sub("evil.tar.gz"), tar =>
        {
            AddFile(tar, "cifar-10-batches-py/batches.meta", [1, 2, 3]);
            switch (kind)
            {
                case "dotdot": AddFile(tar, "cifar-10-batches-py/../../escaped", [1]); break;
                case "symlink": tar.WriteEntry(new GnuTarEntry(TarEntryType.SymbolicLink, "cifar-10-batches-py/data_batch_1") { LinkName = "/etc/passwd" }); break;
                case "hardlink": tar.WriteEntry(new GnuTarEntry(TarEntryType.HardLink, "cifar-10-batches-py/data_batch_1") { LinkName = "/etc/passwd" }); break;
                case "absolute": AddFile(tar, tmp.Sub("escaped"), [1]); break;
                case "outside": AddFile(tar, "escaped", [1]); break;
                case "nested": AddFile(tar, "cifar-10-batches-py/sub/data_batch_1", [1]); break;
                case "fifo": tar.WriteEntry(new GnuTarEntry(TarEntryType.Fifo, "cifar-10-batches-py/data_batch_1")); break;
            }
        });
        var e = Assert.Throws<DataException>(() => TarGzArchive.Extract(archive, root, "cifar-10-batches-py"))!;
        AssertOneLine(e, archive, "refused");
        Assert.That(Directory.GetFileSystemEntries(root), Is.Empty, "a refused archive leaves nothing in ROOT");
        Assert.That(File.Exists(tmp.Sub("escaped")), Is.False);
    }

    [Test, Category("Robustness")]
    public void Truncated_archive_is_refused_and_leaves_nothing()
    {
        using var tmp = new TempDir();
        var full = File.ReadAllBytes(Fixture("cifar-10-python.tar.gz"));
        foreach (int keep in new[] { 5, 100, full.Length / 2, full.Length - 9 })
        {
            var root = Directory.CreateDirectory(tmp.Sub($"root{keep}")).FullName;
            var path = tmp.Sub($"cut{keep}.tar.gz");
            File.WriteAllBytes(path, full.AsSpan(0, keep).ToArray());
            var e = Assert.Throws<DataException>(() => TarGzArchive.Extract(path, root, "cifar-10-batches-py"), $"cut at {keep}")!;
            AssertOneLine(e, path);
            Assert.That(Directory.GetFileSystemEntries(root), Is.Empty);
        }
    }

    [TestCase("cifar10", "data_batch_1"), TestCase("cifar100", "train"), Category("Robustness")]
    public void Missing_folder_names_the_file_and_the_archive(string dataset, string first)
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<DataException>(() => Load(tmp.Path, train: true, dataset: dataset))!;
        AssertOneLine(e, Path.Combine(tmp.Path, Files(dataset).Folder, first), "file not found", Files(dataset).ArchiveName);
    }

    // ---------------------------------------------------------------- (c) augmentation, draw for draw

    /// <summary>The reference loop (see reference/make_cifar_snapshots.py) on the C# side: per epoch the train loader's draws, its batches augmented, then the test loader's one draw.</summary>
    static List<List<(long[] Labels, long Sum, string Sha)>> Augmented(string dataset, int seed, int batchSize, int epochs)
    {
        using var train = Load(FixtureOf(dataset, "p2"), train: true, dataset: dataset);
        var augment = Spec(dataset).Augmentation!;
        manual_seed(seed);
        var result = new List<List<(long[], long, string)>>();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            var (order, _) = DataLoaderOrder.TrainEpoch(train.Count, shuffle: true);
            using (order)
            {
                var batches = new List<(long[], long, string)>();
                for (long start = 0; start < train.Count; start += batchSize)
                {
                    using var idx = order.narrow(0, start, Math.Min(batchSize, train.Count - start));
                    using var x = train.Pixels.index_select(0, idx);
                    using var y = train.Labels.index_select(0, idx);
                    using var a = augment.Apply(x);
                    Assert.That(a.dtype, Is.EqualTo(ScalarType.Byte));
                    using var sum = a.to_type(ScalarType.Int64).sum();
                    batches.Add((y.data<long>().ToArray(), sum.item<long>(), Sha256(a)));
                }
                result.Add(batches);
            }
            DataLoaderOrder.DrawTestLoaderSeed();
        }
        return result;
    }

    static void AssertAugment(JsonElement snap, string dataset)
    {
        var got = Augmented(dataset, snap.GetProperty("seed").GetInt32(), snap.GetProperty("batch_size").GetInt32(), snap.GetProperty("epochs").GetArrayLength());
        int e = 0;
        foreach (var epoch in snap.GetProperty("epochs").EnumerateArray())
        {
            Assert.That(got[e], Has.Count.EqualTo(epoch.GetArrayLength()), $"epoch {e}: batches");
            int b = 0;
            foreach (var batch in epoch.EnumerateArray())
            {
                var (labels, sum, sha) = got[e][b];
                Assert.That(labels, Is.EqualTo(batch.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray()), $"epoch {e} batch {b}: labels (sample order)");
                Assert.That(sum, Is.EqualTo(batch.GetProperty("sum").GetInt64()), $"epoch {e} batch {b}: byte sum");
                Assert.That(sha, Is.EqualTo(batch.GetProperty("sha256").GetString()), $"epoch {e} batch {b}: sha256 of the uint8 batch");
                b++;
            }
            e++;
        }
    }

    [TestCase("cifar10"), TestCase("cifar100"), Category("Parity")]
    public void Augmentation_matches_torchvision_batch_for_batch(string dataset) => AssertAugment(Committed("augment.json", dataset), dataset);

    [TestCase("cifar10"), TestCase("cifar100"), Category("NeedsPyTorch"), Category("Parity")]
    public void Augmentation_matches_live_torchvision_batch_for_batch(string dataset)
    {
        var live = Live("augment.json", dataset);
        Assert.That(live.GetRawText(), Is.EqualTo(Committed("augment.json", dataset).GetRawText()), "the committed snapshot is what torchvision gives now");
        AssertAugment(live, dataset);
    }

    /// <summary>Per-image reference of the transform (managed loops, test only).</summary>
    static byte[] Naive(byte[] src, int n, int c, int h, int w, int pad, CifarAugment.Draws d)
    {
        var dst = new byte[src.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int cx = d.Flip[i] ? w - 1 - x : x;
                        int sy = (int)d.Top[i] + y - pad, sx = (int)d.Left[i] + cx - pad;
                        dst[((i * c + ch) * h + y) * w + x] = sy < 0 || sy >= h || sx < 0 || sx >= w ? (byte)0 : src[((i * c + ch) * h + sy) * w + sx];
                    }
        return dst;
    }

    [Test, Category("Parity")]
    public void Transform_equals_a_per_image_crop_and_flip()
    {
        manual_seed(3);
        var aug = new CifarAugment();
        using var batch = randint(0, 256, new long[] { 37, 3, 32, 32 }, dtype: ScalarType.Byte);
        var draws = aug.Draw(37, 32, 32);
        Assert.That(draws.Top.Concat(draws.Left), Has.All.InRange(0L, 8L));
        Assert.That(draws.Flip.Distinct().Count(), Is.EqualTo(2), "both flips occur in 37 draws");
        using var got = aug.Transform(batch, draws);
        Assert.That(got.data<byte>().ToArray(), Is.EqualTo(Naive(batch.data<byte>().ToArray(), 37, 3, 32, 32, 4, draws)));
    }

    // ---------------------------------------------------------------- (d) batched image work

    [Test, Category("Robustness")]
    public void Transform_work_does_not_grow_with_the_batch()
    {
        // Tensors created by the image work for 1 image and for 256: the same number means no per-image loop.
        var aug = new CifarAugment();
        long Created(int n)
        {
            using var batch = zeros(new long[] { n, 3, 32, 32 }, dtype: ScalarType.Byte);
            var draws = new CifarAugment.Draws(new long[n], Enumerable.Repeat(3L, n).ToArray(), Enumerable.Range(0, n).Select(i => i % 2 == 0).ToArray());
            var stats = DisposeScopeManager.Statistics;
            long before = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount;
            using var r = aug.Transform(batch, draws);
            return stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount - before;
        }
        long one = Created(1), many = Created(256);
        Assert.That(one, Is.GreaterThan(0), "the statistics count tensors");
        Assert.That(many, Is.EqualTo(one), "tensor operations for 256 images vs for 1");
    }
}
