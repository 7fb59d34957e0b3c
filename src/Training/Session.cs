using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Model;
using ResnetMnist.Native;
using ResnetMnist.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>Which of a dataset's splits a <see cref="Session"/> loads.</summary>
public enum Splits
{
    /// <summary>None (prediction on the user's own images).</summary>
    None,
    /// <summary>The test split only (evaluation).</summary>
    Test,
    /// <summary>Training and test splits (training, benchmarks, parity checks).</summary>
    TrainAndTest,
}

/// <summary>
/// A config made concrete: device, dtype, threads, the architecture and dataset specs, the model (seeded, built as the
/// reference builds it) and the splits asked for. The first half of the one-way flow; training, evaluation and
/// prediction take it from here.
/// </summary>
public sealed class Session : IDisposable
{
    readonly ImageSplit? _train, _test;

    public TrainingConfig Config { get; }
    public Device Device { get; }
    public ScalarType Dtype { get; }
    public ArchSpec Arch { get; }
    public DatasetSpec Dataset { get; }
    public ResNet Model { get; }

    /// <summary>The training split; only with <see cref="Splits.TrainAndTest"/>.</summary>
    public ImageSplit Train => _train ?? throw new InvalidOperationException("this session was created without the training split");
    /// <summary>The test split; not with <see cref="Splits.None"/>.</summary>
    public ImageSplit Test => _test ?? throw new InvalidOperationException("this session was created without the test split");

    Session(TrainingConfig config, Device device, ArchSpec arch, DatasetSpec dataset, ResNet model, ImageSplit? train, ImageSplit? test)
    {
        (Config, Device, Dtype, Arch, Dataset, Model, _train, _test) = (config, device, config.ScalarType, arch, dataset, model, train, test);
    }

    /// <summary>Builds everything in the reference's order: seed → model (→ pretrained weights) → dtype/device → data.</summary>
    /// <param name="splits">The splits to load.</param>
    /// <param name="progress">Download progress of pretrained weights (bytes done, total).</param>
    /// <param name="checkpoint">A trained state_dict (.pt) to evaluate or predict with: it replaces pretrained weights and
    /// freezing, and is checked against the model before any data is read, so that a checkpoint of another model is
    /// reported as such.</param>
    public static Session Create(TrainingConfig cfg, Splits splits = Splits.TrainAndTest,
        IProgress<(long done, long? total)>? progress = null, Action<string>? log = null, string? checkpoint = null)
    {
        if (checkpoint is not null) cfg = cfg with { Model = cfg.Model with { Pretrained = "none", InitFrom = null, Freeze = [] } };
        NativeLoader.EnsureLoaded();
        var device = Devices.Resolve(cfg.Device);
        Devices.ApplyThreads(cfg.Threads);
        var arch = ArchSpecs.Get(cfg.Model.Arch);
        var dataset = DatasetSpecs.Get(cfg.Data.Dataset);
        if (dataset == DatasetSpecs.ImageFolder) dataset = Data.Images.ImageFolderFiles.For(cfg.Data.Root, cfg.Data.ImageSize, cfg.Model.NumClasses);

        manual_seed(cfg.Seed);
        var model = new ResNet(arch, cfg.Model.InChannels, cfg.Model.NumClasses);
        if (cfg.Model.Pretrained != "none")
        {
            // Loading copies into existing tensors and draws nothing from the generator: the draw order stays the reference's.
            var report = PretrainedWeights.Load(model, cfg.Model.Pretrained, cfg.Model.Conv1Init, progress);
            log?.Invoke(report.ToString());
        }
        if (cfg.Model.InitFrom is string initFrom)
        {
            var warm = WarmStart.Load(model, initFrom);                     // copies only, no draws: the seed's order holds
            log?.Invoke(warm.ToString());
        }
        Freezing.Apply(model, cfg.Model.Freeze);
        model.to(cfg.ScalarType).to(device);
        if (cfg.Model.ChannelsLast) MemoryFormat.ToChannelsLast(model);
        if (checkpoint is not null)
            using (var f = InputFiles.OpenRead(checkpoint, "a checkpoint file", TorchArchive.MaxFileBytes, m => new CheckpointException($"{checkpoint}: {m}"))) CheckpointStore.LoadWeights(model, f, checkpoint);

        if (splits == Splits.None) return new Session(cfg, device, arch, dataset, model, null, null);
        if (cfg.Data.Download && !dataset.Files.Complete(cfg.Data.Root))
            dataset.Files.Fetch(cfg.Data.Root);
        if (dataset.Files is Data.Images.ImageFolderFiles) return WithFolders(cfg, device, arch, dataset, model, splits, log);
        ImageSplit Load(bool train) => ImageSplit.Load(dataset, cfg.Data.Root, train, train ? cfg.Data.TrainLimit : cfg.Data.TestLimit,
            cfg.Model.NumClasses, cfg.Data.Normalize, cfg.ScalarType, device, cfg.Model.ChannelsLast);
        var test = Load(train: false);
        var trainSplit = splits == Splits.TrainAndTest ? Load(train: true) : null;
        return new Session(cfg, device, arch, dataset, model, trainSplit, test);
    }

    /// <summary>
    /// imagefolder: indexes <c>ROOT/train</c> and <c>ROOT/val</c> (the validation split with the training split's
    /// classes), logging progress while a large folder is indexed; images are decoded per batch, with every core.
    /// </summary>
    static Session WithFolders(TrainingConfig cfg, Device device, ArchSpec arch, DatasetSpec dataset, ResNet model, Splits splits, Action<string>? log)
    {
        var transforms = Data.Images.ImageTransforms.For(cfg.Data.ImageSize, cfg.Data.ResizeSize);
        var train = Data.Images.ImageFolder.Index(Data.Images.ImageFolderFiles.SplitFolder(cfg.Data.Root, true), null, Indexing("train"));
        if (train.Classes.Count > cfg.Model.NumClasses)
            throw new DataException($"{train.Root}: {train.Classes.Count} class folders, more than model.num_classes ({cfg.Model.NumClasses}); allowed: at most {cfg.Model.NumClasses}");
        var val = Data.Images.ImageFolder.Index(Data.Images.ImageFolderFiles.SplitFolder(cfg.Data.Root, false), train.Classes, Indexing("val"));
        ImageSplit Split(Data.Images.ImageFolder f, int? limit) => ImageSplit.FromFolder(f, transforms, Environment.ProcessorCount,
            cfg.Data.Normalize ? dataset.Mean : null, cfg.Data.Normalize ? dataset.Std : null, cfg.ScalarType, device, cfg.Model.ChannelsLast, limit);
        var test = Split(val, cfg.Data.TestLimit);
        var trainSplit = splits == Splits.TrainAndTest ? Split(train, cfg.Data.TrainLimit) : null;
        return new Session(cfg, device, arch, dataset, model, trainSplit, test);

        Action<int>? Indexing(string split) => log is null ? null : n => log($"indexing {split}: {n} images");
    }

    public void Dispose()
    {
        Model.Dispose();
        _train?.Dispose();
        _test?.Dispose();
    }
}
