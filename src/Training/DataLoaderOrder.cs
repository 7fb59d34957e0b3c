using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>
/// PyTorch 1.13's <c>DataLoader</c> batch order, draw for draw from the global generator, so that the same seed
/// gives the same batches as the reference script.
/// </summary>
/// <remarks>
/// Each <c>iter(loader)</c> first draws <c>_base_seed = torch.empty((), dtype=torch.int64).random_()</c> (even with
/// num_workers=0); with <c>shuffle=True</c>, <c>RandomSampler</c> then draws a second value, seeds a fresh
/// generator with it and yields <c>torch.randperm(n, generator=g)</c>. A test loader (shuffle=False) draws only
/// the first value. The last batch is partial (drop_last=False).
/// </remarks>
public static class DataLoaderOrder
{
    /// <summary>Equivalent of PyTorch's <c>torch.empty((), dtype=torch.int64).random_().item()</c> on the global generator.</summary>
    public static long DrawInt64()
    {
        using var t = randint(long.MinValue, long.MaxValue, Array.Empty<long>(), dtype: ScalarType.Int64);
        return t.item<long>() & long.MaxValue;
    }

    /// <summary>
    /// The sample order of one training epoch: performs the draws of <c>iter(DataLoader(shuffle))</c> and returns
    /// the permutation (shuffle) or 0..n-1, plus the sampler seed (0 when not shuffling).
    /// </summary>
    public static (Tensor Order, long SamplerSeed) TrainEpoch(int n, bool shuffle)
    {
        DrawInt64(); // _base_seed
        if (!shuffle) return (arange(n, dtype: ScalarType.Int64), 0);
        long seed = DrawInt64();
        return (Permutation(n, seed), seed);
    }

    /// <summary><c>randperm(n)</c> from a generator seeded with <paramref name="samplerSeed"/> (what RandomSampler yields).</summary>
    public static Tensor Permutation(int n, long samplerSeed)
    {
        using var g = new Generator((ulong)samplerSeed);
        return randperm(n, generator: g, dtype: ScalarType.Int64);
    }

    /// <summary>The one draw of <c>iter(DataLoader(test, shuffle=False))</c> (its <c>_base_seed</c>); the test order is unchanged.</summary>
    public static void DrawTestLoaderSeed() => DrawInt64();
}
