using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using ResnetMnist.Native;
using ResnetMnist.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>
/// Config → device, dtype, threads, model (seeded, as the reference builds it) and data. The first half of the
/// one-way flow; <see cref="Trainer"/> and evaluation take it from here.
/// </summary>
public sealed class TrainingSession : IDisposable
{
    public TrainingConfig Config { get; }
    public Device Device { get; }
    public ScalarType Dtype { get; }
    public ResNet Model { get; }
    public MnistDataset Train { get; }
    public MnistDataset Test { get; }

    TrainingSession(TrainingConfig config, Device device, ScalarType dtype, ResNet model, MnistDataset train, MnistDataset test)
    {
        Config = config; Device = device; Dtype = dtype; Model = model; Train = train; Test = test;
    }

    /// <summary>Builds everything in the reference's order: seed → model (→ pretrained weights) → dtype/device → data.</summary>
    /// <param name="progress">Download progress of pretrained weights (bytes done, total).</param>
    /// <param name="checkpoint">A trained state_dict (.pt) to evaluate or predict with: it replaces pretrained weights and
    /// freezing, and is checked against the model before any data is read, so that a checkpoint of another model is
    /// reported as such.</param>
    public static TrainingSession Create(TrainingConfig cfg, bool loadTrain = true, bool loadData = true,
        IProgress<(long done, long? total)>? progress = null, Action<string>? log = null, string? checkpoint = null)
    {
        if (checkpoint is not null) cfg = cfg with { Model = cfg.Model with { Pretrained = "none", Freeze = [] } };
        NativeLoader.EnsureLoaded();
        var device = Devices.Resolve(cfg.Device);
        Devices.ApplyThreads(cfg.Threads);
        var dtype = DtypeOf(cfg);

        manual_seed(cfg.Seed);
        var model = Models.Create(cfg.Model.Arch, cfg.Model.InChannels, cfg.Model.NumClasses);
        if (cfg.Model.Pretrained != "none")
        {
            // Loading copies into existing tensors and draws nothing from the generator: the seed's order holds.
            var report = PretrainedWeights.Load(model, cfg.Model.Pretrained, cfg.Model.Conv1Init, progress);
            log?.Invoke(report.ToString());
        }
        Freezing.Apply(model, cfg.Model.Freeze);
        model.to(dtype).to(device);
        if (cfg.Model.ChannelsLast) MemoryFormat.ToChannelsLast(model);
        if (checkpoint is not null)
            using (var f = File.OpenRead(checkpoint)) CheckpointStore.LoadWeights(model, f, checkpoint);

        var files = MnistFiles.For(cfg.Data.Dataset);
        if (loadData && cfg.Data.Download && MnistFiles.All.Any(name => files.Find(cfg.Data.Root, name) is null))
            Downloader.Fetch(files, cfg.Data.Root);
        if (!loadData) return new TrainingSession(cfg, device, dtype, model, MnistDataset.Empty(dtype, device), MnistDataset.Empty(dtype, device));
        var test = MnistDataset.Load(files, cfg.Data.Root, train: false, cfg.Data.TestLimit, cfg.Model.NumClasses, cfg.Data.Normalize, dtype, device, cfg.Model.ChannelsLast);
        var train = loadTrain
            ? MnistDataset.Load(files, cfg.Data.Root, train: true, cfg.Data.TrainLimit, cfg.Model.NumClasses, cfg.Data.Normalize, dtype, device, cfg.Model.ChannelsLast)
            : test;
        return new TrainingSession(cfg, device, dtype, model, train, test);
    }

    /// <summary>The torch dtype named by <c>train.dtype</c>.</summary>
    public static ScalarType DtypeOf(TrainingConfig cfg) => cfg.Train.Dtype == "float64" ? ScalarType.Float64 : ScalarType.Float32;

    public void Dispose()
    {
        Model.Dispose();
        if (!ReferenceEquals(Train, Test)) Train.Dispose();
        Test.Dispose();
    }
}
