using System.Globalization;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Training;

/// <summary>checkpoints/last.pt loads in PyTorch (torch.load + load_state_dict, strict) into the reference's model and computes the same outputs.</summary>
[TestFixture, Category("Parity")]
public sealed class CheckpointInteropTests
{
    [Test, Category("NeedsPyTorch")]
    public void PyTorchLoadsLastPtIntoTheSeedModel()
    {
        Python.RequireTorch();
        using var tmp = new TempDir();
        var cfg = ConfigLoader.Parse($"seed: 1\nthreads: 2\ndata: {{root: {Repo.Path("data")}, train_limit: 64, test_limit: 32}}\ntrain: {{epochs: 1, batch_size: 32}}\n", null);
        LibraryRun.Run(cfg, tmp.Path);
        var lastPt = Path.Combine(tmp.Path, "checkpoints", "last.pt");

        // C#: the checkpoint's eval-mode logits for the first 8 embedded images
        using var model = Models.resnet18(1, 10);
        using (var f = File.OpenRead(lastPt)) ResnetMnist.Training.CheckpointStore.LoadWeights(model, f, lastPt);
        model.eval();
        var (x, _) = Snapshot.InputBatch();
        double[] ours;
        using (no_grad()) ours = model.forward(x).to_type(ScalarType.Float64).data<double>().ToArray();

        var script = """
            import sys, gzip, numpy as np, torch, torchvision
            m = torchvision.models.resnet18()
            m.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            m.fc = torch.nn.Linear(512, 10)
            m.load_state_dict(torch.load(sys.argv[1]))  # strict
            m.eval()
            raw = gzip.open(sys.argv[2]).read()
            x = torch.from_numpy(np.frombuffer(raw[16:16 + 8 * 784], dtype=np.uint8).copy()).reshape(8, 1, 28, 28).float() / 255
            with torch.no_grad():
                print(" ".join(repr(v) for v in m(x).double().flatten().tolist()))
            """;
        var theirs = Python.Run(script, lastPt, Repo.Path("data", "MNIST", "raw", "train-images-idx3-ubyte.gz"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        Assert.That(theirs, Has.Length.EqualTo(ours.Length));
        double worst = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"max abs logit difference C# vs PyTorch on last.pt: {worst:E2}");
        // float32 forward, torch.testing.assert_close defaults
        for (int i = 0; i < ours.Length; i++)
            Assert.That(ours[i], Is.EqualTo(theirs[i]).Within(1e-5 + 1.3e-6 * Math.Abs(theirs[i])), $"logit {i}");
    }
}
