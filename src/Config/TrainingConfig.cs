namespace ResnetMnist.Config;

/// <summary>
/// Everything a run needs, resolved and validated. Built only by <see cref="ConfigLoader"/>, which turns YAML
/// plus <c>--set</c> overrides into this record or a <see cref="ConfigException"/>. Key names are the YAML keys.
/// </summary>
public sealed record TrainingConfig
{
    /// <summary><c>seed</c>: torch.manual_seed before the model is built. Default 0.</summary>
    public long Seed { get; init; }
    /// <summary><c>device</c>: auto (CUDA when available, else CPU) | cpu | cuda. Default auto.</summary>
    public string Device { get; init; } = "auto";
    /// <summary><c>threads</c>: intra-op CPU threads; 0 means auto (one per core). Default auto.</summary>
    public int Threads { get; init; }
    public DataConfig Data { get; init; } = new();
    public ModelConfig Model { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public OptimizerConfig Optimizer { get; init; } = new();
    public SchedulerConfig Scheduler { get; init; } = new();

    /// <summary>The YAML file it came from (null when built in code); relative paths were resolved against its folder.</summary>
    public string? SourcePath { get; init; }
}

public sealed record DataConfig
{
    /// <summary><c>data.dataset</c>: mnist | fashion-mnist. Default mnist.</summary>
    public string Dataset { get; init; } = "mnist";
    /// <summary><c>data.root</c>: folder holding <c>MNIST/raw/</c> or <c>FashionMNIST/raw/</c> (torchvision's layout). Default: the embedded sample, <c>data/</c> of the repository.</summary>
    public string Root { get; init; } = "data";
    /// <summary><c>data.download</c>: fetch missing files from torchvision's mirrors (md5-checked). Default false.</summary>
    public bool Download { get; init; }
    /// <summary><c>data.train_limit</c>: use only the first N training images; null = all.</summary>
    public int? TrainLimit { get; init; }
    /// <summary><c>data.test_limit</c>: use only the first N test images; null = all.</summary>
    public int? TestLimit { get; init; }
    /// <summary><c>data.normalize</c>: subtract 0.1307 and divide by 0.3081 after ToTensor's /255. Default false (the seed).</summary>
    public bool Normalize { get; init; }
}

public sealed record ModelConfig
{
    /// <summary><c>model.arch</c>: resnet18 | resnet34. Default resnet18.</summary>
    public string Arch { get; init; } = "resnet18";
    /// <summary><c>model.pretrained</c>: none | torchvision | mlnet | path to .pth/.safetensors. Default none.</summary>
    public string Pretrained { get; init; } = "none";
    /// <summary><c>model.in_channels</c>: image channels. Default 1.</summary>
    public int InChannels { get; init; } = 1;
    /// <summary><c>model.num_classes</c>: classes. Default 10.</summary>
    public int NumClasses { get; init; } = 10;
    /// <summary><c>model.conv1_init</c>: random | sum-rgb | mean-rgb (with pretrained weights). Default random.</summary>
    public string Conv1Init { get; init; } = "random";
    /// <summary><c>model.freeze</c>: top-level modules not trained (conv1, bn1, layer1..layer4, fc). Default none.</summary>
    public IReadOnlyList<string> Freeze { get; init; } = [];
    /// <summary><c>model.bn_eval</c>: keep every BatchNorm in eval mode (fixed statistics) while training. Default false.</summary>
    public bool BnEval { get; init; }
    /// <summary><c>model.channels_last</c>: keep convolution weights and input batches in channels-last (NHWC) memory layout, a speed option; results agree with the default layout to float rounding, not bit for bit; checkpoints written with it on have not been checked for reloading. Default false.</summary>
    public bool ChannelsLast { get; init; }
}

public sealed record TrainConfig
{
    /// <summary><c>train.epochs</c>: passes over the training set. Default 10.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary><c>train.batch_size</c>: images per step. Default 64.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary><c>train.eval_batch_size</c>: images per evaluation batch (does not change results). Default 256 (measured fastest here).</summary>
    public int EvalBatchSize { get; init; } = 256;
    /// <summary><c>train.shuffle</c>: reshuffle every epoch, as DataLoader(shuffle=True). Default true.</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary><c>train.dtype</c>: float32 | float64 (float64 exists for exact parity checks). Default float32.</summary>
    public string Dtype { get; init; } = "float32";
    /// <summary><c>train.log_every</c>: seconds between plain progress lines when output is not a terminal. Default 10.</summary>
    public double LogEvery { get; init; } = 10;
}

public sealed record OptimizerConfig
{
    /// <summary><c>optimizer.name</c>: sgd | adam | adamw. Default adam.</summary>
    public string Name { get; init; } = "adam";
    /// <summary><c>optimizer.lr</c>: learning rate. Default 0.001.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary><c>optimizer.momentum</c>: SGD momentum in [0, 1). Default 0.</summary>
    public double Momentum { get; init; }
    /// <summary><c>optimizer.nesterov</c>: SGD Nesterov momentum. Default false.</summary>
    public bool Nesterov { get; init; }
    /// <summary><c>optimizer.weight_decay</c>: L2 penalty (decoupled for adamw). Default 0 (adamw: 0.01).</summary>
    public double WeightDecay { get; init; }
    /// <summary><c>optimizer.betas</c>: Adam/AdamW (beta1, beta2). Default [0.9, 0.999].</summary>
    public IReadOnlyList<double> Betas { get; init; } = [0.9, 0.999];
    /// <summary><c>optimizer.eps</c>: Adam/AdamW epsilon. Default 1e-8.</summary>
    public double Eps { get; init; } = 1e-8;
}

public sealed record SchedulerConfig
{
    /// <summary><c>scheduler.name</c>: none | step | cosine | onecycle. Default none.</summary>
    public string Name { get; init; } = "none";
    /// <summary><c>scheduler.step_size</c>: epochs between decays (step). Default 3.</summary>
    public int StepSize { get; init; } = 3;
    /// <summary><c>scheduler.gamma</c>: decay factor per step_size epochs (step). Default 0.1.</summary>
    public double Gamma { get; init; } = 0.1;
    /// <summary><c>scheduler.t_max</c>: epochs of one cosine half-period (cosine); null = train.epochs.</summary>
    public int? TMax { get; init; }
    /// <summary><c>scheduler.eta_min</c>: lowest learning rate (cosine). Default 0.</summary>
    public double EtaMin { get; init; }
    /// <summary><c>scheduler.max_lr</c>: peak learning rate (onecycle); null = 10 × optimizer.lr.</summary>
    public double? MaxLr { get; init; }
    /// <summary><c>scheduler.pct_start</c>: fraction of steps spent warming up (onecycle). Default 0.3.</summary>
    public double PctStart { get; init; } = 0.3;
}
