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

    /// <summary>The validation part of the training images (<c>data.val_split</c>); null without a split.</summary>
    public ImageSplit? Validation { get; }

    /// <summary>The pretrained weights file loaded (<c>model.pretrained</c> resolved: the torch.hub file, the mlnet conversion, or the path); null: none.</summary>
    public string? PretrainedFile { get; }

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

    Session(TrainingConfig config, Device device, ArchSpec arch, DatasetSpec dataset, ResNet model, ImageSplit? train, ImageSplit? test,
        ImageSplit? validation = null, string? pretrainedFile = null)
    {
        (Config, Device, Dtype, Arch, Dataset, Model, _train, _test) = (config, device, config.ScalarType, arch, dataset, model, train, test);
        (Validation, PretrainedFile) = (validation, pretrainedFile);
    }

    /// <summary>Builds everything in the reference's order: seed → model (→ pretrained weights) → dtype/device → data.</summary>
    /// <param name="splits">The splits to load.</param>
    /// <param name="progress">Download progress of pretrained weights (bytes done, total).</param>
    /// <param name="checkpoint">A trained state_dict (.pt) to evaluate or predict with: it replaces pretrained weights and
    /// freezing, and is checked against the model before any data is read, so that a checkpoint of another model is
    /// reported as such.</param>
    /// <param name="resuming">The run resumes from its own checkpoint, which holds every weight: <c>model.pretrained</c>
    /// and <c>model.init_from</c> are not read again (so a resume needs neither file, nor a download); loading them
    /// draws nothing from the generator, so the model is built in the reference's order all the same.</param>
    public static Session Create(TrainingConfig cfg, Splits splits = Splits.TrainAndTest,
        IProgress<(long done, long? total)>? progress = null, Action<string>? log = null, string? checkpoint = null, bool resuming = false)
    {
        if (checkpoint is not null) cfg = cfg with { Model = cfg.Model with { Pretrained = PretrainedChoice.None, InitFrom = null, Freeze = [] } };
        NativeLoader.EnsureLoaded();
        var device = Devices.Resolve(cfg.Device);
        Devices.ApplyThreads(cfg.Threads);
        var arch = cfg.Model.Arch;
        var dataset = cfg.Data.Dataset;
        // imagefolder's image size and class names are the run's: data.image_size and the class folders of ROOT/train.
        if (dataset.Files is Data.Images.ImageFolderFiles) dataset = Data.Images.ImageFolderFiles.For(cfg.Data.Root, cfg.Data.ImageSize, cfg.Model.NumClasses);

        manual_seed(cfg.Seed);
        var model = new ResNet(arch, cfg.Model.InChannels, cfg.Model.NumClasses);
        string? pretrainedFile = null;
        if (!cfg.Model.Pretrained.IsNone && !resuming)
        {
            // Loading copies into existing tensors and draws nothing from the generator: the draw order stays the reference's.
            var report = PretrainedWeights.Load(model, cfg.Model.Pretrained, cfg.Model.Conv1Init, progress);
            pretrainedFile = report.File;
            log?.Invoke(report.ToString());
        }
        if (cfg.Model.InitFrom is string initFrom && !resuming)
        {
            var warm = WarmStart.Load(model, initFrom);                     // copies only, no draws: the seed's order holds
            log?.Invoke(warm.ToString());
        }
        Freezing.Apply(model, cfg.Model.Freeze);
        model.to(cfg.ScalarType).to(device);
        if (cfg.Model.ChannelsLast) MemoryFormat.ToChannelsLast(model);
        if (checkpoint is not null)
            using (var f = InputFiles.OpenRead(checkpoint, "a checkpoint file", TorchArchive.MaxFileBytes, m => new CheckpointException($"{checkpoint}: {m}"))) CheckpointStore.LoadWeights(model, f, checkpoint);

        if (splits == Splits.None) return new Session(cfg, device, arch, dataset, model, null, null, null, pretrainedFile);
        if (cfg.Data.Download && !dataset.Files.Complete(cfg.Data.Root))
            DatasetFetcher.Fetch(dataset.Files, cfg.Data.Root);
        ImageSplit Load(bool train) => LoadSplit(cfg, device, dataset, train);
        var (test, trainSplit) = dataset.Files is Data.Images.ImageFolderFiles ? FolderSplits(cfg, device, dataset, splits, log)
            : (Load(train: false), splits == Splits.TrainAndTest ? Load(train: true) : null);
        ImageSplit? validation = null;
        if (trainSplit is not null && cfg.Data.ValSplit > 0)
        {
            // random_split draws from its own generator: the global one is untouched, as in the reference.
            using var whole = trainSplit;
            (trainSplit, validation) = ValidationSplit.Apply(whole, cfg.Data.ValSplit, cfg.Seed, cfg.SourcePath ?? "<config>");
        }
        return new Session(cfg, device, arch, dataset, model, trainSplit, test, validation, pretrainedFile);
    }

    /// <summary>
    /// The training images of <paramref name="cfg"/>'s dataset alone (<c>data.train_limit</c> applied; no model, no
    /// test split), read as <see cref="Create"/> reads them: what <c>bench --mode data</c> times.
    /// </summary>
    public static ImageSplit TrainSplit(TrainingConfig cfg, Device device) =>
        cfg.Data.Dataset.Files is Data.Images.ImageFolderFiles
            ? FolderSplit(cfg, device, cfg.Data.Dataset, IndexTrain(cfg, null), cfg.Data.TrainLimit)
            : LoadSplit(cfg, device, cfg.Data.Dataset, train: true);

    /// <summary>A split of a dataset read whole into memory (MNIST, Fashion-MNIST, CIFAR), its limit applied.</summary>
    static ImageSplit LoadSplit(TrainingConfig cfg, Device device, DatasetSpec dataset, bool train) =>
        ImageSplit.Load(dataset, cfg.Data.Root, train, train ? cfg.Data.TrainLimit : cfg.Data.TestLimit,
            cfg.Model.NumClasses, cfg.Data.Normalize, cfg.ScalarType, device, cfg.Model.ChannelsLast);

    /// <summary>
    /// imagefolder: indexes <c>ROOT/train</c> and <c>ROOT/val</c> (the latter with the training folder's
    /// classes), logging progress while a large folder is indexed; images are decoded per batch, with every core.
    /// </summary>
    static (ImageSplit Test, ImageSplit? Train) FolderSplits(TrainingConfig cfg, Device device, DatasetSpec dataset, Splits splits, Action<string>? log)
    {
        var train = IndexTrain(cfg, log);
        var val = Data.Images.ImageFolder.Index(Data.Images.ImageFolderFiles.SplitFolder(cfg.Data.Root, false), train.Classes, Indexing(log, "val"));
        return (FolderSplit(cfg, device, dataset, val, cfg.Data.TestLimit),
            splits == Splits.TrainAndTest ? FolderSplit(cfg, device, dataset, train, cfg.Data.TrainLimit) : null);
    }

    /// <summary>Indexes <c>ROOT/train</c>; more class folders than <c>model.num_classes</c> are refused.</summary>
    static Data.Images.ImageFolder IndexTrain(TrainingConfig cfg, Action<string>? log)
    {
        var train = Data.Images.ImageFolder.Index(Data.Images.ImageFolderFiles.SplitFolder(cfg.Data.Root, true), null, Indexing(log, "train"));
        if (train.Classes.Count > cfg.Model.NumClasses)
            throw new DataException($"{train.Root}: {train.Classes.Count} class folders, more than model.num_classes ({cfg.Model.NumClasses}); allowed: at most {cfg.Model.NumClasses}");
        return train;
    }

    /// <summary>An indexed folder as a split: decoded per batch with every core, through the evaluation transform (or the augmentation, in training).</summary>
    static ImageSplit FolderSplit(TrainingConfig cfg, Device device, DatasetSpec dataset, Data.Images.ImageFolder folder, int? limit) =>
        ImageSplit.FromFolder(folder, Data.Images.ImageTransforms.For(cfg.Data.ImageSize, cfg.Data.ResizeSize), Environment.ProcessorCount,
            cfg.Data.Normalize ? dataset.Mean : null, cfg.Data.Normalize ? dataset.Std : null, cfg.ScalarType, device, cfg.Model.ChannelsLast, limit);

    static Action<int>? Indexing(Action<string>? log, string split) => log is null ? null : n => log($"indexing {split}: {n} images");

    public void Dispose()
    {
        Model.Dispose();
        _train?.Dispose();
        _test?.Dispose();
        Validation?.Dispose();
    }
}
