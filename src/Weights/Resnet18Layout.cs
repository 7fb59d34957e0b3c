namespace ResnetMnist.Weights;

/// <summary>torchvision resnet18's state_dict layout (keys in its order, shapes), computed without building a model.</summary>
public static class Resnet18Layout
{
    /// <summary>True for running statistics and counters (buffers), false for trainable parameters.</summary>
    public static bool IsBuffer(string key) =>
        key.EndsWith(".running_mean", StringComparison.Ordinal) || key.EndsWith(".running_var", StringComparison.Ordinal)
        || key.EndsWith(".num_batches_tracked", StringComparison.Ordinal);

    /// <summary>All 122 keys with their shapes (num_batches_tracked: scalar, shape []).</summary>
    public static List<(string Key, long[] Shape)> Expected(int inChannels = 3, int numClasses = 1000)
    {
        var list = new List<(string, long[])>();
        void Bn(string p, long c)
        {
            list.Add(($"{p}.weight", [c])); list.Add(($"{p}.bias", [c]));
            list.Add(($"{p}.running_mean", [c])); list.Add(($"{p}.running_var", [c]));
            list.Add(($"{p}.num_batches_tracked", []));
        }
        list.Add(("conv1.weight", [64, inChannels, 7, 7]));
        Bn("bn1", 64);
        long inplanes = 64;
        long[] planes = [64, 128, 256, 512];
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < 2; b++)
            {
                var p = $"layer{s + 1}.{b}";
                long cin = b == 0 ? inplanes : planes[s];
                list.Add(($"{p}.conv1.weight", [planes[s], cin, 3, 3])); Bn($"{p}.bn1", planes[s]);
                list.Add(($"{p}.conv2.weight", [planes[s], planes[s], 3, 3])); Bn($"{p}.bn2", planes[s]);
                if (b == 0 && s > 0)
                {
                    list.Add(($"{p}.downsample.0.weight", [planes[s], cin, 1, 1]));
                    Bn($"{p}.downsample.1", planes[s]);
                }
                if (b == 1) inplanes = planes[s];
            }
        list.Add(("fc.weight", [numClasses, 512]));
        list.Add(("fc.bias", [numClasses]));
        return list;
    }

    internal static string Shape(long[] s) => "[" + string.Join(", ", s) + "]";
}
