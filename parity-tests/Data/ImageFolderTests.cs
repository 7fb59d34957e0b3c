using System.Security.Cryptography;
using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Data;
using ResnetMnist.Data.Images;
using ResnetMnist.Training;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Data;

/// <summary>
/// <c>data.dataset: imagefolder</c> on the fixture (parity-tests/data/imagefolder-fixture, written by
/// reference/make_imagefolder_fixture.py) against torchvision (reference/snapshots/imagefolder/batches.json, from
/// reference/make_imagefolder_snapshots.py, identical under the default, avx2 and avx512 kernel sets): the index
/// (classes, files, targets) is ImageFolder's, and the float32 batches (RandomResizedCrop + RandomHorizontalFlip +
/// ToTensor + Normalize over DataLoader(shuffle) batches, two epochs, then the validation pass with Resize +
/// CenterCrop) are torchvision's, byte for byte, gathered batch by batch and as the training loop and the evaluator
/// take them (<see cref="BatchStream"/>, each batch prepared while the one before is used). Files that are not images
/// are refused with one line naming them.
/// </summary>
[TestFixture, Category("Data"), NonParallelizable]
public sealed class ImageFolderTests
{
    static string Fixture(params string[] parts) => Repo.Path(["parity-tests", "data", "imagefolder-fixture", .. parts]);

    static JsonElement Committed() =>
        JsonDocument.Parse(File.ReadAllText(Repo.Path("reference", "snapshots", "imagefolder", "batches.json"))).RootElement;

    static string Sha256(Tensor float32) => Convert.ToHexStringLower(SHA256.HashData(float32.contiguous().cpu().bytes.ToArray()));

    static readonly double[] Mean = DatasetSpecs.ImageFolder.Mean, Std = DatasetSpecs.ImageFolder.Std;

    [Test, Category("Parity")]
    public void IndexIsTorchvisionsImageFolder()
    {
        var snap = Committed().GetProperty("index");
        IReadOnlyList<string>? classes = null;
        foreach (var (name, train) in new[] { ("train", true), ("val", false) })
        {
            var index = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), train), classes);
            classes ??= index.Classes;
            var s = snap.GetProperty(name);
            Assert.That(index.Classes, Is.EqualTo(s.GetProperty("classes").EnumerateArray().Select(e => e.GetString())), $"{name}: classes");
            Assert.That(index.Files.Select(f => Path.GetRelativePath(Fixture(), f)), Is.EqualTo(s.GetProperty("files").EnumerateArray().Select(e => e.GetString())), $"{name}: files in order");
            Assert.That(index.Labels, Is.EqualTo(s.GetProperty("targets").EnumerateArray().Select(e => e.GetInt32())), $"{name}: targets");
        }
    }

    [TestCase(false), TestCase(true), Category("Parity")]
    public void BatchesEqualTorchvisionsBatchForBatch(bool throughBatchStream)
    {
        var snap = Committed();
        int s = snap.GetProperty("image_size").GetInt32(), bs = snap.GetProperty("batch_size").GetInt32();
        var transforms = new ImageTransforms(s, ImageTransforms.DefaultResizeSize(s));
        var trainIndex = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), true));
        var valIndex = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), false), trainIndex.Classes);
        using var train = ImageSplit.FromFolder(trainIndex, transforms, 2, Mean, Std, ScalarType.Float32, CPU);
        using var val = ImageSplit.FromFolder(valIndex, transforms, 2, Mean, Std, ScalarType.Float32, CPU);
        var augment = DatasetSpecs.ImageFolder.Augmentation;   // data.augment's, from the registry: RandomResizedCrop + RandomHorizontalFlip
        Assert.That(augment, Is.InstanceOf<IImageAugmentation>(), "applied as the files are decoded");
        manual_seed(snap.GetProperty("seed").GetInt64());
        int e = 0;
        foreach (var epoch in snap.GetProperty("epochs").EnumerateArray())
        {
            var (order, _) = DataLoaderOrder.TrainEpoch(train.Count, shuffle: true);
            using (order)
            using (var stream = throughBatchStream ? new BatchStream(train, order, bs, augment) : null)
            {
                int b = 0;
                foreach (var batch in epoch.EnumerateArray())
                {
                    using var scope = NewDisposeScope();
                    var idx = TrainingLoop.BatchIndices(order, b, bs);
                    var (x, y) = stream?.Next() ?? (train.Gather(idx, augment), train.Labels.index_select(0, idx));
                    Assert.That(x.shape, Is.EqualTo(new long[] { idx.shape[0], 3, s, s }));
                    Assert.That(y.data<long>().ToArray(), Is.EqualTo(batch.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64())), $"epoch {e} batch {b}: labels (sample order)");
                    Assert.That(Sha256(x), Is.EqualTo(batch.GetProperty("sha256").GetString()), $"epoch {e} batch {b}: sha256 of the float32 batch");
                    b++;
                }
                Assert.That(b, Is.EqualTo(TrainingLoop.BatchesPerEpoch(train.Count, bs)));
                if (stream is not null) Assert.That(stream.Prefetched, Is.EqualTo(b - 1), "every batch but the first prepared in the background");
            }
            DataLoaderOrder.DrawTestLoaderSeed();
            int v = 0;
            using var valOrder = arange(val.Count, dtype: ScalarType.Int64);
            using var valStream = throughBatchStream ? new BatchStream(val, valOrder, bs) : null;
            foreach (var batch in snap.GetProperty("val").EnumerateArray())
            {
                using var scope = NewDisposeScope();
                int start = v * bs, len = Math.Min(bs, val.Count - start);
                var (x, y) = valStream?.Next() ?? (val.Slice(start, len), val.Labels.narrow(0, start, len));
                Assert.That(y.data<long>().ToArray(), Is.EqualTo(batch.GetProperty("labels").EnumerateArray().Select(l => l.GetInt64())), $"val batch {v}: labels");
                Assert.That(Sha256(x), Is.EqualTo(batch.GetProperty("sha256").GetString()), $"val batch {v}: sha256 of the float32 batch");
                v++;
            }
            if (valStream is not null) Assert.That(valStream.Prefetched, Is.EqualTo(v - 1), "every validation batch but the first prepared in the background");
            e++;
        }
    }

    [Test, Category("Parity")]
    public void PredictPreprocessesAsTheValidationBatches()
    {
        int s = Committed().GetProperty("image_size").GetInt32();
        var transforms = ImageTransforms.For(s, null);
        var trainIndex = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), true));
        var index = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), false), trainIndex.Classes);
        using var val = ImageSplit.FromFolder(index, transforms, 2, Mean, Std, ScalarType.Float32, CPU);
        var spec = ImageFolderFiles.For(Fixture(), s, trainIndex.Classes.Count);
        Assert.That(spec.ClassNames, Is.EqualTo(trainIndex.Classes));
        for (int i = 0; i < index.Files.Count; i++)
        {
            using var input = PredictInput.Load(index.Files[i], invert: null, spec, transforms);   // as predict: load, then data.normalize
            using var x = PredictInput.Normalize(input, spec);
            using var row = val.Slice(i, 1);
            Assert.That(Sha256(x), Is.EqualTo(Sha256(row)), $"{index.Files[i]}: predict's input and the validation batch's row");
        }
    }

    /// <summary>
    /// The registry's augmentation on images already decoded into a square batch: each image as a PIL image of those
    /// bytes through torchvision's <c>RandomResizedCrop(S)</c> + <c>RandomHorizontalFlip()</c>, draw for draw.
    /// </summary>
    [Test, Category("Parity"), Category("NeedsPyTorch")]
    public void AugmentationOfADecodedBatchEqualsTorchvisionOnThoseImages()
    {
        Python.RequireTorch();
        using var tmp = new TempDir();
        const int n = 6, s = 13;
        var after = Python.Run("""
            import sys, os, numpy as np, torch
            from PIL import Image
            from torchvision import transforms
            out, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            x = np.random.default_rng(3).integers(0, 256, size=(n, s, s, 3), dtype=np.uint8)
            torch.manual_seed(5)
            t = transforms.Compose([transforms.RandomResizedCrop(s), transforms.RandomHorizontalFlip()])
            y = np.stack([np.asarray(t(Image.fromarray(x[i]))) for i in range(n)])
            open(os.path.join(out, "in.raw"), "wb").write(x.tobytes())
            open(os.path.join(out, "out.raw"), "wb").write(y.tobytes())
            print(repr(float(torch.rand(1))))
            """, tmp.Path, n.ToString(System.Globalization.CultureInfo.InvariantCulture), s.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var nhwc = tensor(File.ReadAllBytes(Path.Combine(tmp.Path, "in.raw")), new long[] { n, s, s, 3 });
        using var batch = nhwc.permute(0, 3, 1, 2).contiguous();
        manual_seed(5);
        using var augmented = DatasetSpecs.ImageFolder.Augmentation!.Apply(batch);
        Assert.That(augmented.shape, Is.EqualTo(new long[] { n, 3, s, s }));
        using var back = augmented.permute(0, 2, 3, 1).contiguous();
        Assert.That(back.bytes.ToArray(), Is.EqualTo(File.ReadAllBytes(Path.Combine(tmp.Path, "out.raw"))), "augmented bytes");
        using var next = rand(1);
        Assert.That((double)next.item<float>(), Is.EqualTo(double.Parse(after.Trim(), System.Globalization.CultureInfo.InvariantCulture)), "the generator after the draws");
    }

    [Test]
    public void ValidationSplitOfAFolderHoldsTheFilesAtRandomSplitsIndices()
    {
        var transforms = new ImageTransforms(16, 18);
        var index = ImageFolder.Index(ImageFolderFiles.SplitFolder(Fixture(), true));
        using var whole = ImageSplit.FromFolder(index, transforms, 2, Mean, Std, ScalarType.Float32, CPU, limit: 10);
        var (trainAt, valAt) = ValidationSplit.Indices(whole.Count, 0.3, seed: 7);
        var (train, val) = ValidationSplit.Apply(whole, 0.3, seed: 7);
        using (train)
        using (val)
            foreach (var (part, at) in new[] { (train, trainAt), (val, valAt) })
            {
                Assert.That(part.Count, Is.EqualTo(at.Length));
                Assert.That(part.Labels.data<long>().ToArray(), Is.EqualTo(at.Select(i => (long)index.Labels[(int)i])), "labels at the split's indices");
                for (int i = 0; i < at.Length; i++)
                {
                    using var row = part.Slice(i, 1);
                    using var expected = whole.Slice(at[i], 1);
                    Assert.That(Sha256(row), Is.EqualTo(Sha256(expected)), $"row {i}: the image at index {at[i]}");
                }
            }
        Assert.That(valAt, Has.Length.EqualTo(3));
        Assert.That(trainAt.Concat(valAt).Order(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => (long)i)), "a partition of the first 10 images");
    }

    [Test]
    public void AFileThatIsNotAnImageIsRefusedNamingIt()
    {
        using var tmp = new TempDir();
        var cls = Directory.CreateDirectory(Path.Combine(tmp.Path, "train", "cat")).FullName;
        File.Copy(Fixture("train", "cat", "cat01.png"), Path.Combine(cls, "a.png"));
        var fake = Path.Combine(cls, "b.png");
        File.WriteAllText(fake, "hello, not a picture\n");
        var index = ImageFolder.Index(Path.Combine(tmp.Path, "train"));
        Assert.That(index.Files, Has.Count.EqualTo(2));
        using var split = ImageSplit.FromFolder(index, new ImageTransforms(8, 9), 2, null, null, ScalarType.Float32, CPU);
        var e = Assert.Throws<DataException>(() => split.Slice(0, 2).Dispose())!;
        Assert.That(e.Message, Is.EqualTo($"{fake}: not a PNG or JPEG image (unknown file signature); allowed: PNG or JPEG files"));

        var truncated = Path.Combine(cls, "b.png");
        File.WriteAllBytes(truncated, File.ReadAllBytes(Fixture("train", "cat", "cat01.png"))[..60]);
        e = Assert.Throws<DataException>(() => split.Slice(0, 2).Dispose())!;
        Assert.That(e.Message, Does.StartWith($"{truncated}: truncated PNG file"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void ImagesOfFormatsNotDecodedAndEmptyClassesAreRefusedWhenIndexed()
    {
        using var tmp = new TempDir();
        var train = Path.Combine(tmp.Path, "train");
        Directory.CreateDirectory(Path.Combine(train, "cat"));
        Directory.CreateDirectory(Path.Combine(train, "dog"));
        File.Copy(Fixture("train", "cat", "cat01.png"), Path.Combine(train, "cat", "a.png"));
        var e = Assert.Throws<DataException>(() => ImageFolder.Index(train))!;
        Assert.That(e.Message, Is.EqualTo($"{train}: no image in class folder dog; allowed: files named *.jpg, *.jpeg, *.png"));
        var bmp = Path.Combine(train, "dog", "x.BMP");
        File.WriteAllText(bmp, "BM");
        e = Assert.Throws<DataException>(() => ImageFolder.Index(train))!;
        Assert.That(e.Message, Is.EqualTo($"{bmp}: a .bmp image, which this tool does not decode; allowed: PNG or JPEG (.jpg, .jpeg, .png)"));
    }
}
