using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;
using ResnetMnist.ParityTests.Robustness;

namespace ResnetMnist.ParityTests.Config;

/// <summary>The key table: one declaration per key drives parsing, config.yaml, the resume check and the README.</summary>
[TestFixture, Category("Config")]
public sealed class ConfigSchemaTests
{
    public static IEnumerable<string> KeyPaths => ConfigSchema.Keys.Select(k => k.Path);

    /// <summary>Keys whose other value is only valid with another key set too (the rules that span keys).</summary>
    static readonly Dictionary<string, string[]> Context = new()
    {
        ["optimizer.nesterov"] = ["optimizer.name=sgd", "optimizer.momentum=0.5"],
        ["optimizer.momentum"] = ["optimizer.name=sgd"],
        ["data.augment"] = ["data.dataset=cifar10"],
        ["data.image_size"] = ["data.dataset=imagefolder", "model.num_classes=3"],
        ["data.resize_size"] = ["data.dataset=imagefolder", "model.num_classes=3"],
        ["train.early_stop_patience"] = ["data.val_split=0.25"],
    };

    /// <summary>Keys that only change together with another: model.in_channels must be the dataset's channels.</summary>
    static readonly Dictionary<string, string[]> AlsoChanged = new()
    {
        ["model.in_channels"] = ["data.dataset=cifar10"],
    };

    /// <summary>A valid value other than the default, derived from the key's type and bounds.</summary>
    static string OtherValue(ConfigKey k)
    {
        var a = k.Attr;
        bool In(double v) => (double.IsNaN(a.Min) || (a.MinExclusive ? v > a.Min : v >= a.Min)) && (double.IsNaN(a.Max) || (a.MaxExclusive ? v < a.Max : v <= a.Max));
        if (a.Kind == KeyKind.Threads) return "1";
        if (a.Kind == KeyKind.Path) return "'other-folder'";
        if (a.Kind == KeyKind.Pretrained) return "'weights/other.pth'";
        if (k.Type == typeof(IReadOnlyList<string>)) return $"[{k.Names![^1]}]";
        if (k.Type == typeof(IReadOnlyList<double>)) return "[0.8, 0.99]";
        if (k.Names is { } names) return names.First(n => n != k.Format(k.Default));
        if (k.ValueType == typeof(bool)) return (!(bool)k.Default!).ToString().ToLowerInvariant();
        if (k.ValueType == typeof(long)) return ((long)k.Default! + 1).ToString(CultureInfo.InvariantCulture);
        if (k.ValueType == typeof(int))
        {
            int d = k.Default as int? ?? (int)a.Min;
            return (In(d + 1) ? d + 1 : d - 1).ToString(CultureInfo.InvariantCulture);
        }
        double x = k.Default as double? ?? 0;
        return new[] { x * 0.5, x + 0.5, 0.5 }.First(v => v != x && In(v)).ToString("R", CultureInfo.InvariantCulture);
    }

    static TrainingConfig Load(IEnumerable<string> sets) => ConfigLoader.Parse("", Path.Combine(Path.GetTempPath(), "config.yaml"), sets);

    [TestCaseSource(nameof(KeyPaths))]
    public void Resume_refuses_exactly_the_keys_that_change_the_result(string path)
    {
        var key = ConfigSchema.Get(path);
        var context = Context.GetValueOrDefault(path, []);
        var before = Load(context);
        // train.epochs may grow on resume (see Epochs_may_grow_on_resume_unless_the_schedule_spans_them): the change tested is a shrink.
        var other = path == "model.in_channels" ? "3" : path == "train.epochs" ? "9" : OtherValue(key);
        var after = Load([.. context, .. AlsoChanged.GetValueOrDefault(path, []), $"{path}={other}"]);
        Assert.That(key.Format(key.Get(after)), Is.Not.EqualTo(key.Format(key.Get(before))), "the test must change the key's value");

        var saved = ConfigSchema.ResultValues(before);
        var now = ConfigSchema.ResultValues(after);
        if (key.ChangesResult)
        {
            var e = Assert.Throws<CheckpointException>(() => TrainingState.CheckResumable(saved, now, force: false))!;
            Assert.That(e.Message, Does.Contain(path + " was "), "the refusal names the key");
            Assert.That(e.ExitCode, Is.EqualTo(2));
            Assert.DoesNotThrow(() => TrainingState.CheckResumable(saved, now, force: true), "--force resumes anyway");
        }
        else
            Assert.DoesNotThrow(() => TrainingState.CheckResumable(saved, now, force: false), $"{path} changes nothing a run computes");
    }

    [Test]
    public void Epochs_may_grow_on_resume_unless_the_schedule_spans_them()
    {
        void Check(string[] context, bool allowed)
        {
            var saved = ConfigSchema.ResultValues(Load([.. context, "train.epochs=1"]));
            var now = ConfigSchema.ResultValues(Load([.. context, "train.epochs=2"]));
            if (allowed) Assert.DoesNotThrow(() => TrainingState.CheckResumable(saved, now, force: false), string.Join(" ", context));
            else
                Assert.That(Assert.Throws<CheckpointException>(() => TrainingState.CheckResumable(saved, now, force: false))!.Message,
                    Does.Contain("train.epochs was '1', now '2'").And.Contain("spreads its learning rates over train.epochs"), string.Join(" ", context));
        }
        Check([], allowed: true);
        Check(["scheduler.name=step", "scheduler.step_size=1"], allowed: true);
        Check(["scheduler.name=cosine", "scheduler.t_max=5"], allowed: true);
        Check(["scheduler.name=cosine"], allowed: false);
        Check(["scheduler.name=onecycle"], allowed: false);
        // Growing epochs together with another result-affecting change is refused for that change, naming only it.
        var before = ConfigSchema.ResultValues(Load(["train.epochs=1"]));
        var after = ConfigSchema.ResultValues(Load(["train.epochs=2", "optimizer.lr=0.5"]));
        var e = Assert.Throws<CheckpointException>(() => TrainingState.CheckResumable(before, after, force: false))!;
        Assert.That(e.Message, Does.Contain("optimizer.lr was").And.Not.Contain("train.epochs"));
    }

    [Test]
    public void The_keys_that_only_change_speed_or_output_are_the_only_ones_a_resume_may_change()
    {
        var free = ConfigSchema.Keys.Where(k => !k.ChangesResult).Select(k => k.Path);
        Assert.That(free, Is.EquivalentTo(new[] { "device", "threads", "data.download", "train.eval_batch_size", "train.log_every", "train.save", "train.tensorboard", "train.early_stop_patience" }));
        foreach (var k in new[] { "model.bn_eval", "model.freeze", "model.channels_last", "data.test_limit" })
            Assert.That(ConfigSchema.Get(k).ChangesResult, $"{k} changes what a run computes");
    }

    [Test]
    public void A_checkpoint_that_did_not_record_a_key_is_refused_naming_it()
    {
        var now = ConfigSchema.ResultValues(new TrainingConfig());
        var saved = now.Where(kv => kv.Key != "model.bn_eval").ToDictionary();
        var e = Assert.Throws<CheckpointException>(() => TrainingState.CheckResumable(saved, now, force: false))!;
        Assert.That(e.Message, Does.Contain("model.bn_eval was not recorded"));
    }

    [Test]
    public void The_README_configuration_table_is_the_generated_one()
    {
        var readme = File.ReadAllText(Repo.Path("README.md"));
        var m = Regex.Match(readme, "<!-- config-keys:begin -->\n(.*?)<!-- config-keys:end -->", RegexOptions.Singleline);
        Assert.That(m.Success, "README.md has the config-keys markers");
        Assert.That(m.Groups[1].Value, Is.EqualTo(ConfigSchema.MarkdownTable()),
            "README's configuration table differs from the key declarations; paste `dotnet resnet-mnist config keys` between the markers");
    }

    /// <summary>YAML 1.1's float pattern (what PyYAML resolves as a float; <c>1E-08</c> does not match it and reads as a string).</summary>
    static readonly Regex Yaml11Float = new(@"^[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?$");

    [TestCase(1e-8)]
    [TestCase(0.001)]
    [TestCase(10.0)]
    [TestCase(1e20)]
    [TestCase(2.5e-300)]
    [TestCase(0.0)]
    [TestCase(123456789.125)]
    public void Numbers_are_written_as_YAML_1_1_floats_that_read_back_exactly(double value)
    {
        var text = ConfigSchema.Number(value);
        Assert.That(text, Does.Match(Yaml11Float), $"{value:R} written as '{text}'");
        Assert.That(double.Parse(text, CultureInfo.InvariantCulture), Is.EqualTo(value));
    }

    [Test]
    public void The_resolved_config_reads_back_to_the_same_config()
    {
        string[] sets = ["optimizer.name=sgd", "optimizer.momentum=0.9", "optimizer.eps=1e-12", "model.freeze=[bn1, fc]", "threads=2",
            "data.train_limit=100", "scheduler.name=onecycle", "scheduler.max_lr=0.05", "train.dtype=float64", "model.conv1_init=mean-rgb"];
        var cfg = Load(sets);
        var yaml = ConfigSchema.ToYaml(cfg);
        var again = ConfigLoader.Parse(yaml, Path.Combine(Path.GetTempPath(), "config.yaml"));
        Assert.That(ConfigSchema.ToYaml(again), Is.EqualTo(yaml));
        foreach (var k in ConfigSchema.Keys) Assert.That(k.Format(k.Get(again)), Is.EqualTo(k.Format(k.Get(cfg))), k.Path);
        var commented = ConfigSchema.ToYaml(cfg, comments: true);
        Assert.That(ConfigSchema.ToYaml(ConfigLoader.Parse(commented, Path.Combine(Path.GetTempPath(), "config.yaml"))), Is.EqualTo(yaml),
            "the commented config (config keys --yaml) is a valid config too");
    }

    [Test, Category("NeedsPyTorch")]
    public void PyYAML_reads_every_number_of_the_resolved_config_as_a_number()
    {
        var yaml = ConfigSchema.ToYaml(Load(["optimizer.eps=1e-08", "scheduler.max_lr=1e-2", "optimizer.lr=0.0001"]));
        var file = Path.Combine(TempDir.New("pyyaml"), "config.yaml");
        File.WriteAllText(file, yaml);
        var output = Python.Run("""
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            for section in ("optimizer", "scheduler", "train"):
                for k, v in d[section].items():
                    print(f"{section}.{k} {type(v).__name__} {v!r}")
            """, file);
        foreach (var k in ConfigSchema.Keys.Where(k => k.ValueType == typeof(double) && k.Section is "optimizer" or "scheduler" or "train"))
        {
            var line = output.Split('\n').Single(l => l.StartsWith(k.Path + " "));
            Assert.That(line, Does.Match($@"^{Regex.Escape(k.Path)} (float|NoneType) "), $"PyYAML read {line}");
        }
    }

    [Test]
    public void Resume_with_a_changed_result_key_exits_2_naming_it_and_a_speed_key_is_accepted()
    {
        var dir = TempDir.New("resume-keys");
        var run = TrainedRun.CopyTo(Path.Combine(dir, "run"));
        foreach (var set in new[] { "model.bn_eval=true", "model.freeze=[fc]", "model.channels_last=true" })
        {
            var r = Tool.Run(dir, ["train", "--resume", run, "--set", set]);
            Tool.AssertOneErrorLine(r, 2, set[..set.IndexOf('=')] + " was ");
        }
        var ok = Tool.Run(dir, ["train", "--resume", run, "--set", "train.eval_batch_size=128"]);
        Assert.That(ok.ExitCode, Is.EqualTo(0), ok.ToString());
    }
}
