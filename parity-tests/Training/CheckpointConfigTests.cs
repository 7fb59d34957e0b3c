using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.ParityTests.Robustness;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests.Training;

/// <summary>Which config a checkpoint belongs to, resolved in the library as evaluate, predict, export and train --resume use it.</summary>
[TestFixture, Category("Training")]
public sealed class CheckpointConfigTests
{
    [Test]
    public void A_run_folder_and_a_bare_copy_resolve_to_the_model_they_record()
    {
        var fromRun = CheckpointConfig.Resolve(TrainedRun.Dir, null, [], CheckpointUse.Evaluate);
        Assert.That(fromRun.Weights, Is.EqualTo(TrainedRun.BestPt));
        Assert.That(ConfigSchema.ToYaml(fromRun.Config), Is.EqualTo(ConfigSchema.ToYaml(ConfigLoader.Load(Path.Combine(TrainedRun.Dir, "config.yaml")))));

        // A bare copy, with no config.yaml beside it or above it: the model its metadata records; data only where it is evaluated.
        var dir = Path.Combine(TempDir.New("resolve"), "copy");
        Directory.CreateDirectory(dir);
        var bare = Path.Combine(dir, "model.pt");
        File.Copy(TrainedRun.BestPt, bare);
        var notes = new List<string>();
        var forPredict = CheckpointConfig.Resolve(bare, null, [], CheckpointUse.Predict, notes.Add);
        Assert.That(notes.Single(), Does.Contain("model recorded in the file's metadata: resnet18, in_channels 1, num_classes 10, dataset mnist").And.Not.Contain("; data:"));
        Assert.That((forPredict.Config.Model.Arch.Name, forPredict.Config.Model.InChannels, forPredict.Config.Model.NumClasses), Is.EqualTo(("resnet18", 1, 10)));
        notes.Clear();
        CheckpointConfig.Resolve(bare, null, [], CheckpointUse.Evaluate, notes.Add);
        Assert.That(notes.Single(), Does.Contain("; data: mnist in "));

        // A resume takes the run's own config with the overrides; its checkpoint is read by the run.
        var resume = CheckpointConfig.Resolve(TrainedRun.Dir, null, ["train.epochs=2"], CheckpointUse.Resume);
        Assert.That(resume.Weights, Is.Null);
        Assert.That(resume.Config.Train.Epochs, Is.EqualTo(2));

        // An override that contradicts the recorded model is refused naming both.
        var e = Assert.Throws<CheckpointException>(() => CheckpointConfig.Resolve(bare, null, ["model.num_classes=5"], CheckpointUse.Predict))!;
        Assert.That(e.Message, Does.Contain("model.num_classes is 5 with --set but 10 in the checkpoint (the file's metadata)"));
    }
}
