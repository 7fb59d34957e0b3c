namespace ResnetMnist.Model;

/// <summary>Factories, as in <c>torchvision.models</c>.</summary>
public static class Models
{
    /// <summary>Architectures this library builds (the <c>model.arch</c> config key).</summary>
    public static readonly string[] Architectures = ["resnet18", "resnet34"];

    /// <summary>ResNet-18: BasicBlock, [2, 2, 2, 2]. (1, 10) has 11,175,370 parameters; (3, 1000) 11,689,512.</summary>
    public static ResNet resnet18(int inChannels = 3, int numClasses = 1000) => new([2, 2, 2, 2], inChannels, numClasses);

    /// <summary>ResNet-34: BasicBlock, [3, 4, 6, 3].</summary>
    public static ResNet resnet34(int inChannels = 3, int numClasses = 1000) => new([3, 4, 6, 3], inChannels, numClasses);

    /// <summary>Builds <paramref name="arch"/> by name.</summary>
    public static ResNet Create(string arch, int inChannels, int numClasses) => arch switch
    {
        "resnet18" => resnet18(inChannels, numClasses),
        "resnet34" => resnet34(inChannels, numClasses),
        _ => throw new ArgumentException($"unknown architecture '{arch}' (allowed: {string.Join(", ", Architectures)})", nameof(arch)),
    };
}
