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
