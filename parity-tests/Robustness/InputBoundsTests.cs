using System.Diagnostics;
using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>Every input is bounded before it is read: configs, --set values, IDX/gzip data, images, safetensors, last.json.</summary>
[TestFixture, Category("Robustness")]
public sealed class InputBoundsTests
{
    string _dir = "";

    [SetUp]
    public void NewDir() => _dir = TempDir.New("bounds");

    string P(string name) => Path.Combine(_dir, name);

    static string ConfigError(Func<object> load) => Assert.Throws<ConfigException>(() => load())!.Message;

    // --- configs ---

    [Test]
    public void A_config_nested_30000_deep_is_refused_without_overflowing_the_stack()
    {
        File.WriteAllText(P("deep.yaml"), "seed: " + new string('[', 30_000) + new string(']', 30_000) + "\n");
        Assert.That(ConfigError(() => ConfigLoader.Load(P("deep.yaml"))), Does.Contain("deep.yaml:1:22: nested more than 16 levels deep; allowed: at most 16"));
        Assert.That(ConfigError(() => ConfigLoader.Parse("", null, ["seed=" + new string('[', 30_000)])),
            Does.StartWith("--set seed=[[[").And.Contain("nested more than 16 levels deep"));
        // A config at the limit still parses (and is then judged on its values).
        Assert.That(ConfigError(() => ConfigLoader.Parse("seed: " + new string('[', 15) + new string(']', 15), null)), Does.Contain("seed: expected a single value"));
    }

    [Test]
    public void A_second_yaml_document_is_refused()
    {
        Assert.That(ConfigError(() => ConfigLoader.Parse("seed: 1\n---\nseed: 2\n", "c.yaml")),
            Does.Contain("c.yaml:2:1: a second YAML document ('---'); allowed: exactly one document"));
        Assert.That(ConfigError(() => ConfigLoader.Parse("", null, ["seed=1\n---\n2"])), Does.Contain("a second YAML document"));
    }

    [TestCase("null\n")]
    [TestCase("~\n")]
    [TestCase("")]
    [TestCase("# only a comment\n")]
    public void A_null_or_empty_document_is_the_default_config(string yaml)
    {
        var cfg = ConfigLoader.Parse(yaml, null);
        Assert.That(cfg.Seed, Is.EqualTo(0));
        Assert.That(cfg.Model.NumClasses, Is.EqualTo(10));
    }

    [Test]
    public void Fifos_devices_and_large_files_are_refused_as_configs_without_blocking()
    {
        var fifo = P("fifo.yaml");
        using (var mk = Process.Start("mkfifo", fifo)) mk.WaitForExit();
        Assert.That(File.Exists(fifo), Is.True);
        // Opening a FIFO with no writer, or reading /dev/zero, would never return: the loads run aside, and only a hang
        // (not a slow machine) reaches the safety cap.
        static string? Refusal(string path) { try { ConfigLoader.Load(path); return null; } catch (ConfigException e) { return e.Message; } }
        var loads = Task.Run(() => (Fifo: Refusal(fifo), Zero: Refusal("/dev/zero")));
        if (!loads.Wait(TestEnvironment.SafetyCap)) TestEnvironment.FailCapped("loading a FIFO and /dev/zero as configs (they block)");
        Assert.That(loads.Result.Fifo, Does.Contain("fifo.yaml: is not a regular file but a FIFO (named pipe); expected a YAML config file"));
        Assert.That(loads.Result.Zero, Does.Contain("/dev/zero: is not a regular file"));
        File.WriteAllText(P("big.yaml"), "# " + new string('x', 2 << 20) + "\n");
        Assert.That(ConfigError(() => ConfigLoader.Load(P("big.yaml"))), Does.Contain("big.yaml: is 2 MiB, more than the 1 MiB allowed for a YAML config file"));
    }

    [Test]
    public void Sizes_and_threads_are_capped_with_a_clear_message()
    {
        Assert.That(ConfigError(() => ConfigLoader.Parse("model:\n  num_classes: 2147483647\n", "c.yaml")),
            Does.Contain("c.yaml:2:16: model.num_classes: must be <= 1000, found 2147483647; allowed: an integer >= 2 and <= 1000"));
        Assert.That(ConfigError(() => ConfigLoader.Parse("model:\n  num_classes: 99999999999999\n", "c.yaml")), Does.Contain("must be <= 1000"));
        Assert.That(ConfigError(() => ConfigLoader.Parse("model:\n  in_channels: 100000\n", "c.yaml")), Does.Contain("model.in_channels: must be <= 64"));
        Assert.That(ConfigError(() => ConfigLoader.Parse("train:\n  batch_size: 10000000\n", "c.yaml")), Does.Contain("train.batch_size: must be <= 65536"));
        int max = Environment.ProcessorCount * ConfigLoader.ThreadsPerCore;
        Assert.That(ConfigError(() => ConfigLoader.Parse("threads: 100000\n", "c.yaml")),
            Does.Contain($"threads: must be <= {max} ({ConfigLoader.ThreadsPerCore} × the {Environment.ProcessorCount} cores), found 100000"));
        Assert.That(ConfigLoader.Parse($"threads: {max}\n", null).Threads, Is.EqualTo(max));
    }

    // --- IDX and gzip ---

    string ImagesFile(string name, int count, Action<string, byte[]> write)
    {
        var pixels = new byte[count * 28 * 28];
        new Random(count).NextBytes(pixels);
        var bytes = IdxImagesHeader(count, 28, 28).Concat(pixels).ToArray();
        write(P(name), bytes);
        return P(name);
    }

    [Test]
    public void Multi_member_and_zero_padded_gzip_files_are_valid()
    {
        var multi = ImagesFile("multi-images-idx3-ubyte.gz", 10, (p, b) => File.WriteAllBytes(p, Gzip(b[..1000]).Concat(Gzip(b[1000..])).ToArray()));
        Assert.That(Idx.ReadImages(multi).Count, Is.EqualTo(10));
        var padded = ImagesFile("pad-images-idx3-ubyte.gz", 10, (p, b) => File.WriteAllBytes(p, Gzip(b).Concat(new byte[512]).ToArray()));
        var images = Idx.ReadImages(padded);
        Assert.That(images.Pixels, Has.Length.EqualTo(10 * 28 * 28));
        Assert.That(gzipOf(padded), Is.EqualTo(IdxImagesHeader(10, 28, 28).Concat(images.Pixels)));

        static byte[] gzipOf(string p)
        {
            using var psi = Process.Start(new ProcessStartInfo("gzip", ["-dc", p]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            using var ms = new MemoryStream();
            psi.StandardOutput.BaseStream.CopyTo(ms);
            psi.WaitForExit();
            return ms.ToArray();
        }
    }

    [Test]
    public void A_gzip_bomb_is_refused_after_reading_what_the_header_declares()
    {
        // A valid MNIST header for 100 images, then 256 MiB of zeros: about 256 KB compressed.
        var bomb = P("bomb-images-idx3-ubyte.gz");
        GzipBomb(bomb, IdxImagesHeader(100, 28, 28), 256L << 20);
        GC.Collect();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<DataException>(() => Idx.ReadImages(bomb))!;
        Assert.That(e.Message, Does.Contain("header says 100 images of 28×28 (78416 bytes) but the decompressed file is longer; refused"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(16L << 20), "bytes allocated while refusing");
    }

    [TestCase(int.MaxValue, 1024, 1024, "allowed: at most 1 GiB")]
    [TestCase(2_000_000_000, 28, 28, "allowed: at most 1 GiB")]
    [TestCase(10, 70000, 70000, "invalid IDX dimensions")]
    [TestCase(-5, 28, 28, "invalid IDX dimensions")]
    public void Sizes_that_overflow_or_exceed_the_cap_are_refused_before_allocating(int count, int rows, int cols, string expected)
    {
        var raw = P("huge-images-idx3-ubyte");
        File.WriteAllBytes(raw, IdxImagesHeader(count, rows, cols));
        var gz = P("huge-images-idx3-ubyte.gz");
        File.WriteAllBytes(gz, Gzip(IdxImagesHeader(count, rows, cols)));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        Assert.That(Assert.Throws<DataException>(() => Idx.ReadImages(raw))!.Message, Does.StartWith(raw + ":").And.Contain(expected));
        Assert.That(Assert.Throws<DataException>(() => Idx.ReadImages(gz))!.Message, Does.StartWith(gz + ":").And.Contain(expected));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(8L << 20));
    }

    [Test]
    public void A_gzip_header_promising_more_than_deflate_can_hold_is_refused()
    {
        var gz = P("liar-images-idx3-ubyte.gz");
        File.WriteAllBytes(gz, Gzip(IdxImagesHeader(1_000_000, 28, 28)));
        Assert.That(Assert.Throws<DataException>(() => Idx.ReadImages(gz))!.Message, Does.Contain("more than a").And.Contain("gzip file can hold"));
    }

    [Test]
    public void A_fifo_as_data_is_refused_without_blocking()
    {
        var fifo = P("t10k-labels-idx1-ubyte");
        using (var mk = Process.Start("mkfifo", fifo)) mk.WaitForExit();
        Assert.That(Assert.Throws<DataException>(() => Idx.ReadLabels(fifo))!.Message, Does.Contain("is not a regular file"));
    }

    // --- images ---

    [Test]
    public void An_image_with_too_many_pixels_is_refused_from_its_header()
    {
        File.WriteAllBytes(P("huge.png"), PngHeaderOnly(46_000, 46_000));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<DataException>(() => InputImage.Load(P("huge.png")))!;
        Assert.That(e.Message, Does.Contain("huge.png: image is 46000×46000 (2116000000 pixels); allowed: at most 16777216 pixels (4096×4096)"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(8L << 20));
        File.WriteAllText(P("text.png"), "not an image");
        Assert.That(Assert.Throws<DataException>(() => InputImage.Load(P("text.png")))!.Message, Does.Contain("not a PNG or JPEG image"));
        Assert.That(Assert.Throws<DataException>(() => InputImage.Load("/dev/zero"))!.Message, Does.Contain("is not a regular file"));
    }

    // --- safetensors ---

    static string Header(string tensors) => "{" + tensors + "}";

    string SafetensorsError(string header, int dataBytes = 16) =>
        Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(Safetensors(P("t.safetensors"), header, new byte[dataBytes])))!.Message;

    [Test]
    public void A_valid_safetensors_file_loads()
    {
        var data = SmallStorage();
        var path = Safetensors(P("ok.safetensors"), Header("\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"__metadata__\":{\"format\":\"pt\"}"), data);
        Assert.That(WeightsFile.ReadStateDict(path)["w"].data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void Safetensors_headers_are_checked_field_by_field()
    {
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":null,\"shape\":[4],\"data_offsets\":[0,16]}")), Does.Contain("tensor 'w' has dtype null; allowed: F64, F32"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F99\",\"shape\":[4],\"data_offsets\":[0,16]}")), Does.Contain("has dtype 'F99'"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}")),
            Does.Contain("key 'w' appears twice"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-40,-24]}")), Does.Contain("data_offsets holds -40; allowed: integers >= 0"));
        Assert.That(SafetensorsError(Header("\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}")),
            Does.Contain("tensors 'a' and 'b' overlap"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}")), Does.Contain("do not match its dtype and shape (20 bytes)"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}")), Does.Contain("overflows"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}")), Does.Contain("truncated safetensors file: tensor 'w' ends at data byte 32"));
        Assert.That(SafetensorsError("{\"w\": 5}"), Does.Contain("tensor 'w' is not a JSON object"));
        Assert.That(SafetensorsError("{\"w\": {\"dtype\": \"F32\"}}"), Does.Contain("tensor 'w' has no shape list"));
        Assert.That(SafetensorsError(Header("\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,32]}")), Does.Contain("data_offsets has 3 values; allowed: 2"));
    }

    [Test]
    public void A_sparse_two_gigabyte_safetensors_header_is_refused_before_allocating()
    {
        var path = P("sparse.safetensors");
        using (var fs = File.Create(path))
        {
            fs.Write(BitConverter.GetBytes((ulong)(2L << 30)));
            fs.Write("{"u8);
            fs.SetLength(8 + (2L << 30) + 16);                                     // sparse: no blocks written
        }
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(path))!;
        Assert.That(e.Message, Does.Contain("safetensors header of 2147483648 bytes; allowed: at most 16 MiB"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(8L << 20));
    }

    // --- last.json ---

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    string StateError(Func<TrainingState, TrainingState> spoil)
    {
        var folder = Path.Combine(_dir, "checkpoints");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "last.pt"), [1]);
        File.WriteAllBytes(Path.Combine(folder, "last.optim.pt"), [2]);
        var sha = (string f) => Tool.Sha(Path.Combine(folder, f));
        var good = TrainingState.Start(new TrainingConfig()) with
        {
            EpochsDone = 1, GlobalStep = 2, BestAccuracy = 50, BestEpoch = 1, RngState = CheckpointStore.RngState(),
            WeightsSha256 = sha("last.pt"), OptimizerSha256 = sha("last.optim.pt"), Epochs = [new EpochRecord(1, 2.0, 2.0, 50, 0.01, 1, 100)],
        };
        File.WriteAllText(Path.Combine(folder, "last.json"), JsonSerializer.Serialize(spoil(good), Json));
        var store = new CheckpointStore(folder);
        return Assert.Throws<CheckpointException>(() => store.ReadState())!.Message;
    }

    [Test]
    public void Every_field_of_last_json_is_checked_before_use()
    {
        Assert.That(StateError(s => s with { RngState = Convert.ToBase64String([1, 2, 3]) }),
            Does.Contain("last.json: rng_state: 3 bytes; allowed: exactly 5056 (torch.get_rng_state())"));
        Assert.That(StateError(s => s with { RngState = "***" }), Does.Contain("rng_state: not base64"));
        Assert.That(StateError(s => s with { EpochsDone = -1 }), Does.Contain("epochs_done: -1; allowed: an integer >= 0"));
        Assert.That(StateError(s => s with { BatchesDone = -3 }), Does.Contain("batches_done: -3"));
        Assert.That(StateError(s => s with { GlobalStep = -1 }), Does.Contain("global_step: -1"));
        Assert.That(StateError(s => s with { EpochLossSum = -5 }), Does.Contain("epoch_loss_sum"));
        Assert.That(StateError(s => s with { BestAccuracy = 1e9 }), Does.Contain("best_accuracy"));
        Assert.That(StateError(s => s with { WeightsSha256 = "abc" }), Does.Contain("weights_sha256: not a sha256"));
        Assert.That(StateError(s => s with { Config = null! }), Does.Contain("config: missing"));
        // The well-formed state passes the field checks and reaches the sha256 comparison, which the stand-in files pass too.
        Assert.That(StateError(s => s with { OptimizerSha256 = new string('0', 64) }), Does.Contain("last.optim.pt: does not match last.json"));
    }

    [Test]
    public void The_history_in_last_json_is_checked_and_an_older_layout_is_refused_in_one_line()
    {
        Assert.That(StateError(s => s with { Format = 0 }),
            Does.Contain("last.json: format: absent (written by an older version of this tool); allowed: 2; finish the run with the version that started it, or train it again with --force"));
        Assert.That(StateError(s => s with { Epochs = null }), Does.Contain("last.json: epochs: missing"));
        Assert.That(StateError(s => s with { Epochs = [] }), Does.Contain("epochs: 0 records; allowed: one per epoch done, 1..1 in order"));
        Assert.That(StateError(s => s with { BestEpoch = 2 }), Does.Contain("best_epoch: 2; allowed: the epoch of best_accuracy (1..1)"));
    }

    [Test]
    public void A_short_rng_state_never_reaches_libtorch()
    {
        // The generator is restored only from a state the one reader checked; a short one stops there.
        Assert.That(StateError(s => s with { RngState = Convert.ToBase64String([1, 2, 3]) }), Does.Contain("rng_state: 3 bytes; allowed: exactly"));
    }
}
