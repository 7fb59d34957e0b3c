namespace ResnetMnist.Model;

/// <summary>
/// The model shapes the tool builds and accepts from a checkpoint's record: <c>model.in_channels</c> and
/// <c>model.num_classes</c> take their bounds from here, and so does <c>CheckpointModel</c>'s check of a record
/// read from a file.
/// </summary>
public static class ResNetBounds
{
    /// <summary>Fewest image channels (<c>model.in_channels</c>): 1, a grey image.</summary>
    public const int MinInChannels = 1;
    /// <summary>Most image channels (<c>model.in_channels</c>).</summary>
    public const int MaxInChannels = 64;
    /// <summary>Fewest classes (<c>model.num_classes</c>).</summary>
    public const int MinClasses = 2;
    /// <summary>Most classes (<c>model.num_classes</c>; 1000 is ImageNet's <c>fc</c>).</summary>
    public const int MaxClasses = 1000;
}
