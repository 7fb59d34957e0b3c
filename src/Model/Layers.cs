using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace ResnetMnist.Model;

/// <summary>torchvision's small helpers <c>conv3x3</c> and <c>conv1x1</c> (no bias: BatchNorm follows).</summary>
public static class Layers
{
    /// <summary>3×3 convolution with padding 1, in <paramref name="groups"/> groups.</summary>
    public static Conv2d Conv3x3(int inPlanes, int outPlanes, int stride = 1, int groups = 1) =>
        Conv2d(inPlanes, outPlanes, kernel_size: 3, stride: stride, padding: 1, groups: groups, bias: false);

    /// <summary>1×1 convolution.</summary>
    public static Conv2d Conv1x1(int inPlanes, int outPlanes, int stride = 1) =>
        Conv2d(inPlanes, outPlanes, kernel_size: 1, stride: stride, bias: false);
}
