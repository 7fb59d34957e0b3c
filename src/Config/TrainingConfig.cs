using ResnetMnist.Data;
using ResnetMnist.Model;

namespace ResnetMnist.Config;

// The config's keys. Each property below with a [Key] is one key, and that attribute with the property's type and
// initial value is everything the tool knows about it: ConfigSchema reads them to parse and validate YAML, write the
// resolved config.yaml, decide what a resume may change, print `config keys` and the README's table. Adding a key is
// adding one property here.

/// <summary>
/// Everything a run needs, resolved and validated. Built only by <see cref="ConfigLoader"/> (YAML plus
/// <c>--set</c> overrides); <c>new TrainingConfig()</c> holds every default.
/// </summary>
public sealed record TrainingConfig
{
    [Key("seed", "`torch.manual_seed` before the model is built; also fixes the shuffling")]
    public long Seed { get; init; }

    [Key("device", "where tensors live: `auto` picks CUDA when libtorch sees a GPU, else the CPU", Result = false)]
    public DeviceKind Device { get; init; } = DeviceKind.Auto;

    [Key("threads", "intra-op CPU threads; `auto` = one per core", Kind = KeyKind.Threads, Result = false)]
    public int Threads { get; init; }

    public DataConfig Data { get; init; } = new();
    public ModelConfig Model { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public OptimizerConfig Optimizer { get; init; } = new();
    public SchedulerConfig Scheduler { get; init; } = new();

    /// <summary>The YAML file it came from (null when built in code); relative paths were resolved against its folder.</summary>
    public string? SourcePath { get; init; }

    /// <summary>The torch dtype of <c>train.dtype</c>.</summary>
    public TorchSharp.torch.ScalarType ScalarType => Train.Dtype == DtypeKind.Float64 ? TorchSharp.torch.ScalarType.Float64 : TorchSharp.torch.ScalarType.Float32;

    /// <summary>The record of the model this config trains, as its checkpoints carry it.</summary>
    public Weights.CheckpointModel ModelRecord() =>
        new(Model.Arch.Name, Model.InChannels, Model.NumClasses, Data.Dataset.Name, Weights.CheckpointModel.CurrentVersion);
}

public sealed record DataConfig
{
    [Key("data.dataset", "which dataset (torchvision's files, md5s and layout; cifar10: `ROOT/cifar-10-batches-py/` or `ROOT/cifar-10-python.tar.gz`; cifar100: `ROOT/cifar-100-python/` or `ROOT/cifar-100-python.tar.gz`; imagefolder: your own PNG/JPEG images in `ROOT/train/<class>/` and `ROOT/val/<class>/`, read as torchvision's `ImageFolder`)", Allowed = typeof(DatasetSpecs))]
    public DatasetSpec Dataset { get; init; } = DatasetSpecs.Mnist;

    [Key("data.root", "folder holding torchvision's layout (`ROOT/MNIST/raw/`, `ROOT/FashionMNIST/raw/` with IDX files, `.gz` or raw; `ROOT/cifar-10-batches-py/`); relative to the config file; `sample`: the MNIST sample packaged with the tool (9,000 train / 1,000 test digits; data.dataset mnist only; a folder of that name: `./sample`)",
        Kind = KeyKind.Path)]
    public string Root { get; init; } = "data";

    [Key("data.download", "fetch missing files from torchvision's mirrors (md5-checked, temp file + rename)", Result = false)]
    public bool Download { get; init; }

    [Key("data.train_limit", "use the first N training images (null = all)", Min = 1, Unit = "images")]
    public int? TrainLimit { get; init; }

    [Key("data.test_limit", "use the first N test images (null = all)", Min = 1, Unit = "images")]
    public int? TestLimit { get; init; }

    [Key("data.augment", "torchvision's `RandomCrop(32, padding=4)` (cifar10, cifar100) or `RandomResizedCrop(image_size)` (imagefolder), then `RandomHorizontalFlip()`, on every training image, drawn from the global generator exactly as torchvision draws them (cifar10, cifar100, imagefolder; evaluation is never augmented)")]
    public bool Augment { get; init; }

    /// <summary>What training batches go through: the dataset's augmentation with <c>data.augment</c>, else null.</summary>
    public IAugmentation? Augmentation => Augment ? Dataset.Augmentation : null;

    [Key("data.image_size", "imagefolder: side of the square the model sees (`RandomResizedCrop` in training with data.augment, `CenterCrop` otherwise)", Min = 1, Max = 4096, Unit = "pixels")]
    public int ImageSize { get; init; } = 224;

    [Key("data.resize_size", "imagefolder: the shorter side after the evaluation `Resize`, before `CenterCrop(image_size)` (null = `int(image_size / 0.875)`, torchvision's 256 for 224)", Min = 1, Max = 4096, Unit = "pixels")]
    public int? ResizeSize { get; init; }

    [Key("data.normalize", "`false`: pixels = byte / 255 (`ToTensor`, as the reference); `true`: then subtract the dataset's mean and divide by its std (MNIST: 0.1307, 0.3081)")]
    public bool Normalize { get; init; }

    [Key("data.val_split", "fraction of the training images held out for validation, drawn as `torch.utils.data.random_split(train, [n - floor(n·f), floor(n·f)], generator=torch.Generator().manual_seed(seed))` (after `train_limit`); the best checkpoint and early stopping then use validation accuracy and the test set is evaluated for the report only. `0`: no split, as the reference (best is chosen on the test set)",
        Min = 0, Max = 1, MaxExclusive = true)]
    public double ValSplit { get; init; }
}

public sealed record ModelConfig
{
    [Key("model.arch", "the network, as `torchvision.models` builds it", Allowed = typeof(ArchSpecs))]
    public ArchSpec Arch { get; init; } = ArchSpecs.Resnet18;

    [Key("model.pretrained", "`none` · a weights name of `model.arch`, as torchvision's weight enums: `IMAGENET1K_V1` (alias `torchvision`; torch.hub cache/download), `IMAGENET1K_V2` where torchvision has it, `mlnet` (resnet18, ImageNet, offline) · path to a `.pth`/`.safetensors` file; see docs/pretrained.md",
        Kind = KeyKind.Pretrained)]
    public PretrainedChoice Pretrained { get; init; } = PretrainedChoice.None;

    [Key("model.in_channels", "image channels, the dataset's; `conv1` is replaced by a fresh `Conv2d(in_channels, 64, 7, 2, 3)` when ≠ 3 (with 3, torchvision's own `conv1` is kept, pretrained or not)",
        Min = ResNetBounds.MinInChannels, Max = ResNetBounds.MaxInChannels, DefaultText = "the dataset's channels: `1` (mnist, fashion-mnist), `3` (cifar10, cifar100, imagefolder)", FollowsDataset = true)]
    public int InChannels { get; init; } = 1;

    [Key("model.num_classes", "classes; `fc` is replaced by a fresh `Linear(features, num_classes)` when ≠ 1000", Min = ResNetBounds.MinClasses, Max = ResNetBounds.MaxClasses,
        DefaultText = "the dataset's classes: `10` (mnist, fashion-mnist, cifar10), `100` (cifar100); imagefolder: the class folders of `ROOT/train`", FollowsDataset = true)]
    public int NumClasses { get; init; } = 10;

    [Key("model.conv1_init", "with pretrained weights and in_channels ≠ 3: `random` (the reference) or derived from the RGB filters")]
    public Conv1Init Conv1Init { get; init; } = Conv1Init.Random;

    [Key("model.freeze", "top-level modules not trained (their BatchNorm stays in eval mode)", Allowed = typeof(ResnetMnist.Weights.Freezing))]
    public IReadOnlyList<string> Freeze { get; init; } = [];

    [Key("model.init_from", "warm start: a `.pt`/`.pth`/`.safetensors` state_dict, or a run folder (its `best.pt`, else `last.pt`), whose tensors are copied wherever name and shape match the model; the rest keep their fresh initialisation (listed in the log). Applied after `pretrained`; null = none", Kind = KeyKind.Path)]
    public string? InitFrom { get; init; }

    [Key("model.bn_eval", "keep every BatchNorm in eval mode (fixed statistics) while training")]
    public bool BnEval { get; init; }

    [Key("model.channels_last", "NHWC memory layout for conv weights and inputs; changes float rounding, so parity holds only to float32 noise")]
    public bool ChannelsLast { get; init; }
}

public sealed record TrainConfig
{
    [Key("train.epochs", "passes over the training set", Min = 1, Unit = "epochs")]
    public int Epochs { get; init; } = 10;

    [Key("train.batch_size", "images per optimizer step; the last batch of an epoch is partial (`drop_last=False`)", Min = 1, Max = ConfigLoader.MaxBatch, Unit = "images")]
    public int BatchSize { get; init; } = 64;

    [Key("train.eval_batch_size", "images per evaluation batch (changes no result; 256 measured fastest here)", Min = 1, Max = ConfigLoader.MaxBatch,
        Unit = "images", Result = false)]
    public int EvalBatchSize { get; init; } = 256;

    [Key("train.shuffle", "reshuffle every epoch exactly as `DataLoader(shuffle=True)` under the same seed")]
    public bool Shuffle { get; init; } = true;

    [Key("train.dtype", "parameter and input dtype (`float64` exists for exact parity checks)")]
    public DtypeKind Dtype { get; init; } = DtypeKind.Float32;

    [Key("train.log_every", "seconds between plain progress lines when output is not a terminal", Min = 0, MinExclusive = true, Unit = "s", Result = false)]
    public double LogEvery { get; init; } = 10;

    [Key("train.save", "checkpoints kept in `checkpoints/`: `both` = `last.pt` + `last.optim.pt` + `last.json` (resumable) and `best.pt` (weights only) + `best.json`; `last` = without `best.*`; `best` = `best.pt` + `best.json` only; `none` = nothing. With `best` or `none` the run cannot be resumed", Result = false)]
    public SaveKind Save { get; init; } = SaveKind.Both;

    [Key("train.tensorboard", "also write TensorBoard event files to `RUN/tensorboard/`: loss and lr per step, train loss, test loss, test accuracy and lr per epoch, with `data.val_split` also validation loss and accuracy (`tensorboard --logdir RUN`)", Result = false)]
    public bool Tensorboard { get; init; }

    [Key("train.early_stop_patience", "stop after this many epochs in a row without a higher validation accuracy (needs `data.val_split`); null = train all `train.epochs`", Min = 1, Unit = "epochs", Result = false)]
    public int? EarlyStopPatience { get; init; }
}

public sealed record OptimizerConfig
{
    [Key("optimizer.name", "`torch.optim` algorithm")]
    public OptimizerKind Name { get; init; } = OptimizerKind.Adam;

    [Key("optimizer.lr", "learning rate (the base rate a scheduler scales)", Min = 0, MinExclusive = true)]
    public double Lr { get; init; } = 1e-3;

    [Key("optimizer.momentum", "SGD momentum (sgd only)", Min = 0, Max = 1, MaxExclusive = true)]
    public double Momentum { get; init; }

    [Key("optimizer.nesterov", "Nesterov momentum (sgd with momentum > 0 only)")]
    public bool Nesterov { get; init; }

    [Key("optimizer.weight_decay", "L2 penalty for sgd/adam, decoupled for adamw", Min = 0, DefaultText = "`0` (`adamw`: `0.01`)")]
    public double WeightDecay { get; init; }

    [Key("optimizer.betas", "Adam/AdamW (beta1, beta2)", Min = 0, Max = 1, MaxExclusive = true, Count = 2)]
    public IReadOnlyList<double> Betas { get; init; } = [0.9, 0.999];

    [Key("optimizer.eps", "Adam/AdamW epsilon", Min = 0, MinExclusive = true)]
    public double Eps { get; init; } = 1e-8;
}

public sealed record SchedulerConfig
{
    [Key("scheduler.name", "learning-rate schedule: `step` (`StepLR`, per epoch) · `cosine` (`CosineAnnealingLR`, per epoch) · `onecycle` (`OneCycleLR`, per step)")]
    public SchedulerKind Name { get; init; } = SchedulerKind.None;

    [Key("scheduler.step_size", "epochs between decays (`step`)", Min = 1, Unit = "epochs")]
    public int StepSize { get; init; } = 3;

    [Key("scheduler.gamma", "decay factor per step_size epochs (`step`)", Min = 0, MinExclusive = true, Max = 1)]
    public double Gamma { get; init; } = 0.1;

    [Key("scheduler.t_max", "epochs of the cosine half-period (`cosine`; null = `train.epochs`; past it the rate rises again, as PyTorch's does)", Min = 1, Unit = "epochs")]
    public int? TMax { get; init; }

    [Key("scheduler.eta_min", "lowest learning rate (`cosine`)", Min = 0)]
    public double EtaMin { get; init; }

    [Key("scheduler.max_lr", "peak learning rate (`onecycle`; null = 10 × `optimizer.lr`; start = max/25, end = start/1e4)", Min = 0, MinExclusive = true)]
    public double? MaxLr { get; init; }

    [Key("scheduler.pct_start", "fraction of the steps spent warming up (`onecycle`)", Min = 0, MinExclusive = true, Max = 1, MaxExclusive = true)]
    public double PctStart { get; init; } = 0.3;
}

/// <summary><c>device</c>.</summary>
public enum DeviceKind { [Name("auto")] Auto, [Name("cpu")] Cpu, [Name("cuda")] Cuda }

/// <summary><c>train.dtype</c>.</summary>
/// <summary><c>train.save</c>: which checkpoint files a run keeps.</summary>
public enum SaveKind { [Name("last")] Last, [Name("best")] Best, [Name("both")] Both, [Name("none")] None }

public enum DtypeKind { [Name("float32")] Float32, [Name("float64")] Float64 }

/// <summary><c>optimizer.name</c>: <c>torch.optim.SGD</c>, <c>Adam</c>, <c>AdamW</c>.</summary>
public enum OptimizerKind { [Name("sgd")] Sgd, [Name("adam")] Adam, [Name("adamw")] AdamW }

/// <summary><c>scheduler.name</c>: none, <c>StepLR</c>, <c>CosineAnnealingLR</c>, <c>OneCycleLR</c>.</summary>
public enum SchedulerKind { [Name("none")] None, [Name("step")] Step, [Name("cosine")] Cosine, [Name("onecycle")] OneCycle }

