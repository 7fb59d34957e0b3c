using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Training;

/// <summary>
/// What a training step does every time leaves nothing for the finalizer. Native objects freed late (at a garbage
/// collection, between a later step's large blocks) fragmented the C library's heap: a batch-256 epoch's resident
/// memory grew by ~70 MiB (bench/NOTES.md). The step's own parts are checked here: the model's BatchNorm (TorchSharp's
/// makes two Scalars per call and leaves them to the finalizer) and the flat optimizer's per-step check (every shape
/// or stride array TorchSharp returns leaves a pinned-array object behind). Counts, not time or memory: machine load
/// does not move them.
/// </summary>
[TestFixture, Category("Training")]
public sealed class FinalizerTests
{
    /// <summary>
    /// Objects the garbage collector finds waiting for their finalizer after <paramref name="work"/> ran, beyond what
    /// it finds after doing nothing (the runtime's own, a few), each counted after everything before was finalized.
    /// </summary>
    static long LeftForTheFinalizer(Action work)
    {
        static long After(Action work)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            work();
            GC.Collect();
            long pending = GC.GetGCMemoryInfo(GCKind.Any).FinalizationPendingCount;
            GC.WaitForPendingFinalizers();
            return pending;
        }
        After(() => { });
        long idle = After(() => { });
        return After(work) - idle;
    }

    [Test]
    public void BatchNormComputesTorchSharpsValuesAndLeavesNothingBehind()
    {
        using var scope = NewDisposeScope();
        var ours = new Model.BatchNorm2d(8);
        var theirs = nn.BatchNorm2d(8);
        var gen = new Generator(11);
        using (no_grad())
        {
            ours.weight!.copy_(rand(8, generator: gen) + 0.5);
            ours.bias!.copy_(randn(8, generator: gen));
            theirs.load_state_dict(ours.state_dict());
        }
        Assert.That(ours.state_dict().Keys, Is.EqualTo(theirs.state_dict().Keys), "state_dict names");

        var x = randn(new long[] { 4, 8, 5, 5 }, generator: gen, dtype: ScalarType.Float64);
        ours.to(ScalarType.Float64);
        theirs.to(ScalarType.Float64);
        for (int step = 0; step < 3; step++)
        {
            var a = ours.call(x * (step + 1));
            var b = theirs.call(x * (step + 1));
            Assert.That(Bytes(a), Is.EqualTo(Bytes(b)), $"training output, call {step + 1}");
        }
        foreach (var (name, t) in theirs.state_dict())
            Assert.That(Bytes(ours.state_dict()[name]), Is.EqualTo(Bytes(t)), $"{name} after three training calls");
        ours.eval();
        theirs.eval();
        Assert.That(Bytes(ours.call(x)), Is.EqualTo(Bytes(theirs.call(x))), "eval output");
        Assert.Throws<ArgumentException>(() => ours.call(randn(4, 8)), "a 2-D input is refused as TorchSharp's is");

        ours.train();
        theirs.train();
        const int calls = 50;
        long own = LeftForTheFinalizer(() => { for (int i = 0; i < calls; i++) { using var s = NewDisposeScope(); ours.call(x); } });
        long torchSharps = LeftForTheFinalizer(() => { for (int i = 0; i < calls; i++) { using var s = NewDisposeScope(); theirs.call(x); } });
        TestContext.Out.WriteLine($"left for the finalizer after {calls} training calls: ours {own}, TorchSharp's BatchNorm2d {torchSharps}");
        Assert.That(own, Is.LessThan(calls / 10), "objects left for the finalizer by our BatchNorm2d");
    }

    /// <summary>
    /// <c>zero_grad</c> and <c>step</c> of the flat optimizers, on a model of 8 parameter tensors, 20 times: nothing
    /// left (before, the per-step check left a pinned array for every shape and stride it asked for, several per
    /// parameter, and <c>zero_()</c> a Scalar).
    /// </summary>
    [TestCase("{name: adam, lr: 0.001}")]
    [TestCase("{name: adamw, lr: 0.001, weight_decay: 0.01}")]
    [TestCase("{name: sgd, lr: 0.001, momentum: 0.9}")]
    [TestCase("{name: sgd, lr: 0.001, momentum: 0.9, nesterov: true, weight_decay: 0.0001}")]
    public void TheFlatOptimizersStepsLeaveNothingBehind(string optimizer)
    {
        using var scope = NewDisposeScope();
        var model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, bias: false), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * 4 * 4, 6), nn.Linear(6, 3));
        var x = randn(5, 1, 8, 8);
        var y = tensor(new long[] { 0, 1, 2, 1, 0 });
        using var opt = Optimizers.Create(ConfigLoader.Parse($"optimizer: {optimizer}\n", null).Optimizer, model.parameters().ToList());
        TrainingLoop.Step(model, opt, x, y); // SGD's momentum moves into its buffer at the first step
        const int steps = 20;
        long left = LeftForTheFinalizer(() =>
        {
            for (int i = 0; i < steps; i++)
            {
                using var s = NewDisposeScope();
                opt.zero_grad();
                opt.step();
            }
        });
        Assert.That(((IFlatStep)opt).LastStepFlat, Is.True, "the flat path ran");
        Assert.That(left, Is.Zero, $"objects left for the finalizer by {steps} flat steps (zero_grad and step)");
    }

    static byte[] Bytes(Tensor t) => t.contiguous().bytes.ToArray();
}
