namespace ResnetMnist.Model;

/// <summary>Factories, as in <c>torchvision.models</c>.</summary>
public static class Models
{
    /// <summary>ResNet-18: BasicBlock, [2, 2, 2, 2]. (1, 10) has 11,175,370 parameters; (3, 1000) 11,689,512.</summary>
    public static ResNet resnet18(int inChannels = 3, int numClasses = 1000) => new(ArchSpecs.Resnet18, inChannels, numClasses);

    /// <summary>ResNet-34: BasicBlock, [3, 4, 6, 3].</summary>
    public static ResNet resnet34(int inChannels = 3, int numClasses = 1000) => new(ArchSpecs.Resnet34, inChannels, numClasses);

    /// <summary>ResNet-50: Bottleneck (expansion 4, stride on the 3×3), [3, 4, 6, 3]. (3, 1000) has 25,557,032 parameters.</summary>
    public static ResNet resnet50(int inChannels = 3, int numClasses = 1000) => new(ArchSpecs.Resnet50, inChannels, numClasses);

    /// <summary>Builds the architecture named <paramref name="arch"/> (a <c>model.arch</c> value).</summary>
    public static ResNet Create(string arch, int inChannels, int numClasses) => new(ArchSpecs.Get(arch), inChannels, numClasses);
}
