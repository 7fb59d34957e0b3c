using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Data.Images;
using ResnetMnist.Training;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// <see cref="BatchStream"/>, where the training loop and the evaluator take their batches: preparing the next batch of
/// image files in the background changes no step, no draw of the global generator and no error, and leaves no work
/// behind. That the batches themselves are torchvision's is ImageFolderTests' job (with and without prefetching).
/// </summary>
[TestFixture, Category("Training")]
public sealed class BatchStreamTests
{
    static string Fixture(params string[] parts) => Repo.Path(["parity-tests", "data", "imagefolder-fixture", .. parts]);

    // The fixture's 12 training images (PNG and JPEG, assorted sizes and modes) in 3 batches of 4, two epochs,
    // RandomResizedCrop + flip drawn per image; float32, whose steps repeat bit for bit on one machine with one
    // thread count (as ResumeTests rely on), so that any difference is the data's.
    static TrainingConfig Config() => ConfigLoader.Parse($$"""
        seed: 5
        threads: 2
        data: {dataset: imagefolder, root: '{{Fixture()}}', augment: true, normalize: true, image_size: 24}
        train: {epochs: 2, batch_size: 4}
        optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
        """, null);

    sealed record Ran(List<(double Loss, double Lr)> Steps, Dictionary<string, byte[]> Weights, byte[] Generator, long Prefetched);

    /// <param name="drawAfterStep">A global step after which the caller draws from the global generator (0: never).</param>
    static Ran RunLoop(bool prefetch, int drawAfterStep)
    {
        using var session = Session.Create(Config());
        using var optimizer = Optimizers.Create(session.Config.Optimizer, session.Model.parameters());
        var loop = new TrainingLoop(session, optimizer) { Prefetch = prefetch };
        var steps = new List<(double, double)>();
        foreach (var e in loop.Run())
        {
            if (e is not StepDone s) continue;
            steps.Add((s.Record.Loss, s.Record.Lr));
            if (s.Record.Step == drawAfterStep) rand(1).Dispose();
        }
        var weights = session.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());
        using var state = get_rng_state();
        return new Ran(steps, weights, state.bytes.ToArray(), loop.PrefetchedBatches);
    }

    /// <summary>
    /// The same run with and without prefetching: every loss, learning rate and weight, and the generator at the end,
    /// bit for bit. With prefetching, every batch but each epoch's first is prepared in the background, except where
    /// the caller draws from the global generator between two steps (here after step 2, in both runs): the batch after
    /// that (step 3) is made again on the calling thread, so 3 of the 6 batches come from the background.
    /// </summary>
    [Test]
    public void PrefetchingChangesNoStepAndNoDraw()
    {
        const int drawAfterStep = 2, prefetched = 3;
        var plain = RunLoop(prefetch: false, drawAfterStep);
        var ahead = RunLoop(prefetch: true, drawAfterStep);
        Assert.That(plain.Steps, Has.Count.EqualTo(6));
        Assert.That(ahead.Steps, Is.EqualTo(plain.Steps), "losses and learning rates");
        foreach (var (name, bytes) in plain.Weights)
            Assert.That(ahead.Weights[name], Is.EqualTo(bytes), $"{name} after the run");
        Assert.That(ahead.Generator, Is.EqualTo(plain.Generator), "the global generator after the run");
        Assert.That(plain.Prefetched, Is.Zero);
        Assert.That(ahead.Prefetched, Is.EqualTo(prefetched), "batches prepared while the step before trained");
    }

    /// <summary>
    /// A run stopped after step 2, while the third batch was being prepared, and resumed gives the steps.csv of an
    /// uninterrupted run, byte for byte: the checkpoint records the generator as the second batch left it.
    /// </summary>
    [Test]
    public void StoppedWhileABatchIsPreparedResumesExactly()
    {
        using var tmp = new TempDir();
        LibraryRun.Run(Config(), tmp.Sub("full"));
        using var cts = new CancellationTokenSource();
        LibraryRun.Run(Config(), tmp.Sub("resumed"), observer: new LibraryRun.StopAt(cts, afterStep: 2), cancel: cts.Token);
        Assert.That(ResnetMnist.Outputs.RunDirectory.ReadSteps(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Has.Count.EqualTo(2));
        LibraryRun.Run(Config(), tmp.Sub("resumed"), resume: true);
        Assert.That(File.ReadAllText(Path.Combine(tmp.Sub("resumed"), "steps.csv")), Is.EqualTo(File.ReadAllText(Path.Combine(tmp.Sub("full"), "steps.csv"))));
    }

    /// <summary>
    /// Two good images, then a file that is not one in the second batch: taking the second batch (prepared in the
    /// background) throws that file's own error, as decoding it there and then would, with the generator where the
    /// first batch left it; nothing is left running. A pass stopped while a batch is prepared waits for that work.
    /// </summary>
    [Test]
    public void AFileThatIsNotAnImageInTheNextBatchIsItsErrorAndNoWorkIsLeft()
    {
        using var tmp = new TempDir();
        var cls = Directory.CreateDirectory(Path.Combine(tmp.Path, "train", "cat")).FullName;
        File.Copy(Fixture("train", "cat", "cat01.png"), Path.Combine(cls, "a.png"));
        File.Copy(Fixture("train", "cat", "cat00.jpg"), Path.Combine(cls, "b.jpg"));
        var fake = Path.Combine(cls, "c.png");
        File.WriteAllText(fake, "hello, not a picture\n");
        File.Copy(Fixture("train", "cat", "cat02.png"), Path.Combine(cls, "d.png"));
        var index = ImageFolder.Index(Path.Combine(tmp.Path, "train"));
        using var split = ImageSplit.FromFolder(index, new ImageTransforms(8, 9), 2, null, null, ScalarType.Float32, CPU);
        using var order = arange(4L, dtype: ScalarType.Int64);
        var augment = DatasetSpecs.ImageFolder.Augmentation;
        manual_seed(3);

        using (var batches = new BatchStream(split, order, 2, augment))
        {
            using (var scope = NewDisposeScope())
            {
                var (x, _) = batches.Next();
                Assert.That(x.shape, Is.EqualTo(new long[] { 2, 3, 8, 8 }));
            }
            Assert.That(batches.Pending, Is.True, "the second batch is prepared while the first is used");
            using var before = get_rng_state();
            var e = Assert.Throws<DataException>(() => batches.Next())!;
            Assert.That(e.Message, Is.EqualTo($"{fake}: not a PNG or JPEG image (unknown file signature); allowed: PNG or JPEG files"));
            Assert.That(batches.Pending, Is.False, "nothing is prepared after the error");
            using var after = get_rng_state();
            Assert.That(after.bytes.ToArray(), Is.EqualTo(before.bytes.ToArray()), "the failed batch drew nothing");
        }

        var stopped = new BatchStream(split, order, 2, augment);
        using (var scope = NewDisposeScope()) stopped.Next();
        Assert.That(stopped.Pending, Is.True);
        stopped.Dispose();
        Assert.That(stopped.Pending, Is.False, "the work for the batch never asked for has ended");
    }

    /// <summary>
    /// The same through <c>train</c>: the first batch trains while the second, holding a file that is not an image, is
    /// decoded in the background; the run ends with that file's one-line error (exit 2) after exactly one step.
    /// </summary>
    [Test]
    public void TrainStopsAtTheSecondBatchsBadFileWithOneLine()
    {
        var dir = TempDir.New("prefetch-error");
        foreach (var split in new[] { "train", "val" })
            foreach (var cls in new[] { "cat", "dog" })
            {
                var folder = Directory.CreateDirectory(Path.Combine(dir, "photos", split, cls)).FullName;
                File.Copy(Fixture("train", "cat", "cat01.png"), Path.Combine(folder, "a.png"));
                File.Copy(Fixture("train", "cat", "cat00.jpg"), Path.Combine(folder, "b.jpg"));
            }
        var fake = Path.Combine(dir, "photos", "train", "cat", "c.png");
        File.WriteAllText(fake, "hello, not a picture\n");
        // Batches of 2 in file order (no shuffle): (cat/a, cat/b), then (cat/c, dog/a).
        var cfg = Tool.WriteConfig(dir, $$"""
            seed: 1
            threads: 2
            data: {dataset: imagefolder, root: '{{dir}}/photos', image_size: 16, augment: true}
            train: {epochs: 1, batch_size: 2, shuffle: false}
            """);
        var run = Path.Combine(dir, "run");
        var r = Tool.Run(dir, ["train", cfg, "--out", run]);
        Tool.AssertOneErrorLine(r, 2, $"{fake}: not a PNG or JPEG image (unknown file signature); allowed: PNG or JPEG files");
        Assert.That(ResnetMnist.Outputs.RunDirectory.ReadSteps(Path.Combine(run, "steps.csv")).Select(s => s.Step), Is.EqualTo(new long[] { 1 }),
            "the first batch trained, the second failed");
    }
}
