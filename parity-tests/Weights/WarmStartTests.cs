using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Model;
using ResnetMnist.ParityTests.Robustness;
using ResnetMnist.Training;
using ResnetMnist.Weights;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>
/// <c>model.init_from</c> warm-starts from a checkpoint, keeping every tensor whose name and shape match and listing
/// what was re-initialised; <c>model.pretrained</c> with a checkpoint of the same model loads it whole.
/// </summary>
[TestFixture, Category("Weights")]
public sealed class WarmStartTests
{
    static Dictionary<string, Tensor> File(string path) => WeightsFile.ReadStateDict(path);

    [Test]
    public void Init_from_a_run_with_other_classes_keeps_the_matching_tensors_and_reinitialises_fc()
    {
        var dir = TempDir.New("init-from");
        var logs = new List<string>();
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(), System.IO.Path.Combine(dir, "config.yaml"),
            [$"model.init_from={TrainedRun.BestPt}", "model.num_classes=12", "seed=7"]);
        using var session = Session.Create(cfg, Splits.None, log: logs.Add);
        var file = File(TrainedRun.BestPt);
        var sd = session.Model.state_dict();
        foreach (var (key, t) in sd)
        {
            if (key.StartsWith("fc.", StringComparison.Ordinal)) continue;
            Assert.That(t.eq(file[key]).all().item<bool>(), $"{key} copied from the checkpoint");
        }
        Assert.That(sd["fc.weight"].shape, Is.EqualTo(new long[] { 12, 512 }));
        Assert.That(logs.Single(l => l.StartsWith("init_from:")), Does.Contain("120 tensors copied; kept fresh: fc.weight, fc.bias"));
        // The fresh fc is the seed's: the same as a model built without init_from.
        manual_seed(7);
        using var plain = Models.resnet18(1, 12);
        Assert.That(sd["fc.weight"].eq(plain.state_dict()["fc.weight"]).all().item<bool>(), "fc keeps the seeded fresh initialisation");
    }

    [Test]
    public void Init_from_a_run_folder_takes_its_best_pt()
    {
        var dir = TempDir.New("init-from-run");
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(), System.IO.Path.Combine(dir, "config.yaml"), [$"model.init_from={TrainedRun.Dir}"]);
        using var session = Session.Create(cfg, Splits.None);
        var file = File(TrainedRun.BestPt);
        foreach (var (key, t) in session.Model.state_dict())
            Assert.That(t.eq(file[key]).all().item<bool>(), $"{key} copied from the run's best.pt");
    }

    [Test]
    public void A_file_that_shares_nothing_with_the_model_is_refused()
    {
        var dir = TempDir.New("init-from-none");
        var path = System.IO.Path.Combine(dir, "other.pt");
        var other = new Dictionary<string, Tensor> { ["encoder.weight"] = ones(3, 3) };
        using (var f = System.IO.File.Create(path)) TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(f, other);
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(), System.IO.Path.Combine(dir, "config.yaml"), [$"model.init_from={path}"]);
        var e = Assert.Throws<WeightsFileException>(() => Session.Create(cfg, Splits.None))!;
        Assert.That(e.Message, Does.Contain("shares no tensor"));
    }

    [Test]
    public void Pretrained_with_a_checkpoint_of_the_same_model_loads_conv1_and_fc_too()
    {
        var dir = TempDir.New("pretrained-own");
        var logs = new List<string>();
        var cfg = ConfigLoader.Parse(Tool.SmallConfig(), System.IO.Path.Combine(dir, "config.yaml"), [$"model.pretrained={TrainedRun.BestPt}"]);
        using var session = Session.Create(cfg, Splits.None, log: logs.Add);
        var file = File(TrainedRun.BestPt);
        foreach (var (key, t) in session.Model.state_dict())
            Assert.That(t.eq(file[key]).all().item<bool>(), $"{key} loaded");
        Assert.That(logs.Single(l => l.StartsWith("pretrained:")), Does.Contain("kept fresh: none"));
    }
}
