using ResnetMnist.Config;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>Builds the optimizer named in the config, with PyTorch's semantics and defaults.</summary>
public static class Optimizers
{
    public static OptimizerHelper Create(OptimizerConfig c, IEnumerable<Parameter> parameters) => c.Name switch
    {
        "sgd" => optim.SGD(parameters, c.Lr, momentum: c.Momentum, weight_decay: c.WeightDecay, nesterov: c.Nesterov),
        "adam" => optim.Adam(parameters, c.Lr, beta1: c.Betas[0], beta2: c.Betas[1], eps: c.Eps, weight_decay: c.WeightDecay),
        "adamw" => optim.AdamW(parameters, c.Lr, beta1: c.Betas[0], beta2: c.Betas[1], eps: c.Eps, weight_decay: c.WeightDecay),
        _ => throw new ArgumentException($"unknown optimizer '{c.Name}'"),
    };

    /// <summary>Sets the learning rate of every parameter group.</summary>
    public static void SetLr(OptimizerHelper optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
    }
}
