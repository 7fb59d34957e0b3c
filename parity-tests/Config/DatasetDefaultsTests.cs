using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;

namespace ResnetMnist.ParityTests.Config;

/// <summary><c>data.root: sample</c> and the keys that follow <c>data.dataset</c> unless set.</summary>
[TestFixture, Category("Config")]
public sealed class DatasetDefaultsTests
{
    static string ConfigFile => Path.Combine(TempDir.New("dataset-defaults"), "config.yaml");

    [Test]
    public void Root_sample_names_the_packaged_mnist_sample()
    {
        Assert.That(PackagedFiles.SampleRoot, Is.Not.Null, "the test output carries the packaged sample");
        var cfg = ConfigLoader.Parse("data:\n  dataset: mnist\n  root: sample\n", ConfigFile);
        Assert.That(cfg.Data.Root, Is.EqualTo(PackagedFiles.SampleRoot));
        Assert.That(ConfigLoader.Parse("", null, ["data.root=sample"]).Data.Root, Is.EqualTo(PackagedFiles.SampleRoot), "--set names it too");
        var file = ConfigFile;
        Assert.That(ConfigLoader.Parse("data:\n  root: ./sample\n", file).Data.Root, Is.EqualTo(Path.Combine(Path.GetDirectoryName(file)!, "sample")),
            "a folder named sample is reached as ./sample");
    }

    [TestCase("fashion-mnist"), TestCase("cifar10"), TestCase("cifar100")]
    public void Root_sample_is_refused_for_a_dataset_without_a_packaged_sample(string dataset)
    {
        var file = ConfigFile;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse($"data:\n  dataset: {dataset}\n  root: sample\n", file))!;
        Assert.That(e.Message, Does.StartWith($"{file}:3:9: data.root: 'sample'").And.Contain($"data.dataset is {dataset}").And.Contain("; allowed: a folder holding " + dataset));
        Assert.That(e.Message, Does.Not.Contain("\n"));
        Assert.That(e.Message, Does.Not.Contain(PackagedFiles.SampleRoot!), "the install folder is no place for the user's files");
    }

    [Test]
    public void Root_sample_in_an_install_without_it_is_refused_naming_the_key()
    {
        var saved = PackagedFiles.BaseDirectory;
        try
        {
            PackagedFiles.BaseDirectory = TempDir.New("no-sample");
            var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("", null, ["data.root=sample"]))!;
            Assert.That(e.Message, Does.StartWith("--set data.root=sample: data.root: 'sample': this install lacks the packaged MNIST sample"));
        }
        finally { PackagedFiles.BaseDirectory = saved; }
    }

    [TestCase("mnist", 1, 10), TestCase("fashion-mnist", 1, 10), TestCase("cifar10", 3, 10), TestCase("cifar100", 3, 100)]
    public void Unset_model_keys_follow_the_dataset(string dataset, int channels, int classes)
    {
        var spec = DatasetSpecs.Get(dataset);
        Assert.That((spec.Channels, spec.NumClasses), Is.EqualTo((channels, classes)));
        var cfg = ConfigLoader.Parse($"data:\n  dataset: {dataset}\n", ConfigFile);
        Assert.That(cfg.Data.Dataset, Is.SameAs(spec), "the config holds the registry's spec");
        Assert.That((cfg.Model.InChannels, cfg.Model.NumClasses), Is.EqualTo((spec.Channels, spec.NumClasses)));
        var nulls = ConfigLoader.Parse($"data:\n  dataset: {dataset}\nmodel:\n  in_channels: ~\n  num_classes: ~\n", ConfigFile);
        Assert.That((nulls.Model.InChannels, nulls.Model.NumClasses), Is.EqualTo((spec.Channels, spec.NumClasses)), "null means: the dataset's");
        Assert.That(ConfigLoader.Parse($"data:\n  dataset: {dataset}\nmodel:\n  num_classes: 7\n", ConfigFile).Model.NumClasses, Is.EqualTo(7), "a set value wins");
        var file = ConfigFile;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse($"data:\n  dataset: {dataset}\nmodel:\n  in_channels: {4 - channels}\n", file))!;
        Assert.That(e.Message, Does.StartWith($"{file}:4:16: model.in_channels: is {4 - channels}, but data.dataset {dataset} has {channels}-channel images"),
            "a value the user set against the dataset is still refused");
    }

    [Test]
    public void The_commented_config_leaves_the_dataset_keys_to_the_dataset()
    {
        var yaml = ConfigSchema.ToYaml(new TrainingConfig(), comments: true);
        Assert.That(yaml, Does.Contain("  in_channels: ~\n").And.Contain("  num_classes: ~\n"));
        var cifar = ConfigLoader.Parse(yaml, ConfigFile, ["data.dataset=cifar10"]);
        Assert.That(cifar.Model.InChannels, Is.EqualTo(3), "changing data.dataset alone is enough");
    }

    [Test]
    public void The_packaged_quickstart_pins_no_dataset_dependent_key()
    {
        var quickstart = PackagedFiles.Quickstart;
        Assert.That(quickstart, Is.Not.Null, "the test output carries configs/quickstart.yaml");
        var cfg = ConfigLoader.Load(quickstart!, ["data.dataset=cifar10"]);
        Assert.That((cfg.Model.InChannels, cfg.Model.NumClasses), Is.EqualTo((3, 10)));
    }
}
