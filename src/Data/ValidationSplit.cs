using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>
/// <c>data.val_split</c>: a fraction of the training images held out for validation, drawn exactly as PyTorch 1.13's
/// <c>torch.utils.data.random_split(train_set, [n - n_val, n_val], generator=torch.Generator().manual_seed(seed))</c>
/// draws it (torch/utils/data/dataset.py): <c>indices = torch.randperm(n, generator=generator)</c>, the first
/// <c>n - n_val</c> of them the training subset, the last <c>n_val</c> the validation subset, each in that order.
/// </summary>
/// <remarks>
/// <c>n_val = floor(n · fraction)</c>, the product in double precision. That is the length random_split itself gives
/// the validation part when handed the fractions <c>[1 - fraction, fraction]</c>: it floors each fraction's share and
/// adds the remainder (at most 1 here) round-robin from the first part, the training one. The split draws only from
/// its own generator: the global one, which builds the model and shuffles, draws exactly as without a split.
/// </remarks>
public static class ValidationSplit
{
    /// <summary>Validation images for <paramref name="images"/> training images and <paramref name="fraction"/> in [0, 1).</summary>
    public static int Size(int images, double fraction) => (int)Math.Floor(images * fraction);

    /// <summary>
    /// The training and validation indices (into the training split as loaded, after <c>data.train_limit</c>), in
    /// random_split's order.
    /// </summary>
    public static (long[] Train, long[] Validation) Indices(int images, double fraction, long seed)
    {
        int nVal = Size(images, fraction);
        using var g = new Generator(unchecked((ulong)seed));
        using var perm = randperm(images, generator: g, dtype: ScalarType.Int64);
        var all = perm.data<long>().ToArray();
        return (all[..(images - nVal)], all[(images - nVal)..]);
    }

    /// <summary>
    /// Splits <paramref name="train"/> into (training, validation) subsets; refuses a fraction that leaves the
    /// validation subset empty with one line naming the key.
    /// </summary>
    public static (ImageSplit Train, ImageSplit Validation) Apply(ImageSplit train, double fraction, long seed, string where = "<config>")
    {
        if (Size(train.Count, fraction) == 0)
            throw new DataException($"{where}: data.val_split: {fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)} of {train.Count} training images is no image (the share is floored); allowed: 0 (no validation split) or a fraction whose share holds at least one image");
        var (t, v) = Indices(train.Count, fraction, seed);
        return (train.Subset(t), train.Subset(v));
    }
}
