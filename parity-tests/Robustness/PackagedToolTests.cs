using NUnit.Framework;
using ResnetMnist.Config;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>The tool as installed: the packaged quickstart and sample, <c>init</c>, examples that work from any folder.</summary>
[TestFixture, Category("Tool")]
public sealed class PackagedToolTests
{
    static string ToolDir => Path.GetDirectoryName(Tool.Dll)!;

    static readonly string[] Small = ["--set", "data.train_limit=64", "--set", "data.test_limit=64", "--set", "train.batch_size=32", "--set", "threads=2"];

    [Test]
    public void Train_without_a_config_trains_the_quickstart_on_the_packaged_sample_from_any_folder()
    {
        Assert.That(File.Exists(Path.Combine(ToolDir, "configs", "quickstart.yaml")), "configs/quickstart.yaml travels with the tool");
        Assert.That(File.Exists(Path.Combine(ToolDir, "data", "MNIST", "raw", "train-images-idx3-ubyte.gz")), "the sample travels with the tool");
        var dir = TempDir.New("noconfig");
        var r = Tool.Run(dir, ["train", .. Small, "--out", "run"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var cfg = ConfigLoader.Load(Path.Combine(dir, "run", "config.yaml"));
        Assert.That(cfg.Data.Root, Is.EqualTo(Path.Combine(ToolDir, "data")));
        Assert.That((cfg.Train.Epochs, cfg.Optimizer.Name), Is.EqualTo((1, OptimizerKind.Adam)), "the quickstart's settings");
    }

    [Test]
    public void Train_without_a_config_uses_local_data_when_it_holds_mnist()
    {
        var dir = TempDir.New("localdata");
        var raw = Directory.CreateDirectory(Path.Combine(dir, "data", "MNIST", "raw")).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(Tool.SampleDataRoot, "MNIST", "raw"), "*.gz")) File.Copy(f, Path.Combine(raw, Path.GetFileName(f)));
        var r = Tool.Run(dir, ["train", .. Small, "--out", "run"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(ConfigLoader.Load(Path.Combine(dir, "run", "config.yaml")).Data.Root, Is.EqualTo(Path.Combine(dir, "data")));
    }

    [Test]
    public void Init_writes_a_commented_config_with_the_defaults_and_never_overwrites()
    {
        var dir = TempDir.New("init");
        var r = Tool.Run(dir, ["init", "exp"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var file = Path.Combine(dir, "exp", "config.yaml");
        var text = File.ReadAllText(file);
        Assert.That(text, Does.Contain("#"));
        var cfg = ConfigLoader.Load(file);
        Assert.That(cfg with { SourcePath = null, Data = cfg.Data with { Root = "data" } }, Is.EqualTo(new TrainingConfig()).Using<TrainingConfig>((a, b) => ConfigSchema.ToYaml(a) == ConfigSchema.ToYaml(b)));
        var again = Tool.Run(dir, ["init", "exp"]);
        Tool.AssertOneErrorLine(again, 2, "already exists");
        Assert.That(File.ReadAllText(file), Is.EqualTo(text));
    }

    [Test]
    public void An_init_config_trains_as_written_from_an_empty_folder()
    {
        var dir = TempDir.New("init-train");
        Assert.That(Tool.Run(dir, ["init", "exp"]).ExitCode, Is.EqualTo(0));
        var text = File.ReadAllText(Path.Combine(dir, "exp", "config.yaml"));
        Assert.That(text, Does.Contain("  root: 'sample'\n").Or.Contain("  root: sample\n"));
        Assert.That(text, Does.Contain("  in_channels: ~\n").And.Contain("  num_classes: ~\n"), "the dataset's keys are left to the dataset");
        var r = Tool.Run(dir, ["train", Path.Combine("exp", "config.yaml"), "--set", "data.train_limit=64", "--set", "data.test_limit=32",
            "--set", "train.epochs=1", "--set", "train.batch_size=32", "--set", "threads=2", "--out", "run"]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(File.Exists(Path.Combine(dir, "run", "summary.json")), r.ToString());
        Assert.That(ConfigLoader.Load(Path.Combine(dir, "run", "config.yaml")).Data.Root, Is.EqualTo(Path.Combine(ToolDir, "data")), "the packaged sample");
        var fashion = Tool.Run(dir, ["train", Path.Combine("exp", "config.yaml"), "--set", "data.dataset=fashion-mnist", "--out", "run2"]);
        Tool.AssertOneErrorLine(fashion, 2, "data.root: 'sample' (the packaged MNIST sample) is only for data.dataset mnist");
        Assert.That(fashion.Stderr, Does.Contain(Path.Combine(dir, "exp", "config.yaml") + ":").And.Contain("allowed: "));
        Assert.That(Directory.Exists(Path.Combine(dir, "run2")), Is.False);
    }

    [TestCase("cifar10", "cifar-10-batches-py"), TestCase("fashion-mnist", "FashionMNIST")]
    public void Train_without_a_config_looks_for_other_datasets_in_local_data(string dataset, string folder)
    {
        var dir = TempDir.New("noconfig-" + dataset);
        var r = Tool.Run(dir, ["train", .. Small, "--set", "data.dataset=" + dataset, "--out", "run"]);
        Tool.AssertOneErrorLine(r, 2, Path.Combine(dir, "data", folder));
        Assert.That(r.Stderr, Does.Not.Contain("in_channels").And.Not.Contain(ToolDir), "a key the user never set, or the install folder, is named");
        Assert.That(Directory.Exists(Path.Combine(dir, "run")), Is.False);
    }

    [Test]
    public void Device_cuda_on_the_cpu_build_says_how_to_proceed_without_rebuilding_advice_alone()
    {
        var dir = TempDir.New("cuda");
        var r = Tool.Run(dir, ["train", .. Small, "--set", "device=cuda", "--out", "run"]);
        Tool.AssertOneErrorLine(r, 2, "this resnet-mnist is the CPU build");
        Assert.That(r.Stderr, Does.Contain("--set device=cpu").And.Contain("-p:TorchBackend=cuda"));
    }

    [Test]
    public void Help_examples_name_no_repository_file()
    {
        foreach (var cmd in new[] { "train", "sweep", "init", "parity", "bench" })
        {
            var r = Tool.Run(TempDir.New("help"), [cmd, "--help"]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
            Assert.That(r.Stdout, Does.Not.Contain("configs/").And.Not.Contain("bench/bench.yaml"), r.ToString());
        }
    }
}
