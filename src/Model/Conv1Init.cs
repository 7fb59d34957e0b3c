namespace ResnetMnist.Model;

/// <summary><c>model.conv1_init</c>: how a pretrained RGB <c>conv1</c> becomes an <c>in_channels</c> one.</summary>
public enum Conv1Init { [Name("random")] Random, [Name("sum-rgb")] SumRgb, [Name("mean-rgb")] MeanRgb }
