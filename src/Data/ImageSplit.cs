using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>
/// One split of an image dataset held as tensors on the training device: <see cref="Pixels"/> N×C×H×W bytes (as
/// in the files: a quarter of the memory of float pixels) and <see cref="Labels"/> N int64. A batch is gathered by
/// index and converted as torchvision's <c>ToTensor()</c> does (bytes / 255 in float32, optionally normalised with
/// the dataset's mean and std, then the training dtype, in channels-last layout with <c>model.channels_last</c>):
/// no per-image work.
/// </summary>
public sealed class ImageSplit : IDisposable
{
    public Tensor Pixels { get; }
    public Tensor Labels { get; }
    public int Count => (int)Labels.shape[0];
    public string Source { get; }

    /// <summary>
    /// Refuses an empty split with one line naming its file: training needs images, and accuracy over none is
    /// undefined (not 0%). <paramref name="training"/> says which role the split plays.
    /// </summary>
    public void RequireImages(bool training)
    {
        if (Count > 0) return;
        throw new DataException(training
            ? $"{Source}: the training split has no images; nothing to train on"
            : $"{Source}: the test split has no images; accuracy cannot be measured");
    }
    readonly double[]? _mean, _std;
    readonly bool _channelsLast;
    readonly ScalarType _dtype;
    readonly Images.ImageFolderBatches? _folder;

    /// <param name="mean">Per-channel mean to subtract (with <paramref name="std"/>); null: no normalisation.</param>
    /// <param name="folder">Images decoded per batch from files (<see cref="Pixels"/> is then empty).</param>
    ImageSplit(Tensor pixels, Tensor labels, string source, double[]? mean, double[]? std, ScalarType dtype, bool channelsLast,
        Images.ImageFolderBatches? folder = null)
    {
        (Pixels, Labels, Source, _mean, _std, _dtype, _channelsLast, _folder) = (pixels, labels, source, mean, std, dtype, channelsLast, folder);
    }

    /// <summary>
    /// A split of image files (<see cref="Images.ImageFolder"/>) decoded per batch: <see cref="Gather"/> with the
    /// dataset's augmentation applies torchvision's training transform (<see cref="Images.ResizedCropFlip"/>), without
    /// one (and <see cref="Slice"/>) the evaluation transform (Resize + CenterCrop).
    /// </summary>
    /// <param name="workers">Images decoded at once.</param>
    public static ImageSplit FromFolder(Images.ImageFolder folder, Images.ImageTransforms transforms, int workers,
        double[]? mean, double[]? std, ScalarType dtype, Device device, bool channelsLast = false, int? limit = null)
    {
        int n = Math.Min(limit ?? folder.Files.Count, folder.Files.Count);
        var labels = tensor(folder.Labels.Take(n).Select(l => (long)l).ToArray(), new long[] { n }).to(device);
        var none = zeros(new long[] { 0, 3, transforms.ImageSize, transforms.ImageSize }, dtype: ScalarType.Byte, device: device);
        return new ImageSplit(none, labels, folder.Root, mean, std, dtype, channelsLast, new Images.ImageFolderBatches(folder, transforms, workers));
    }

    /// <summary>The images at <paramref name="indices"/>, as model input (dtype of the session).</summary>
    /// <param name="augment">Applied to the bytes first, in the order of <paramref name="indices"/> (training with
    /// <c>data.augment</c>); a split of image files applies it as it decodes them (<see cref="Images.ImageFolderBatches.Batch"/>).</param>
    public Tensor Gather(Tensor indices, IAugmentation? augment = null)
    {
        if (_folder is not null)
        {
            using var batch = _folder.Batch(indices, augment);
            return ToInput(batch.to(Labels.device));
        }
        using var bytes = Pixels.index_select(0, indices);
        if (augment is null) return ToInput(bytes);
        using var augmented = augment.Apply(bytes);
        return ToInput(augmented);
    }

    /// <summary>The image files of a split decoded per batch (<see cref="FromFolder"/>); null for a split held in memory.</summary>
    internal Images.ImageFolderBatches? Folder => _folder;

    /// <summary>
    /// Bytes of a batch of this split's files (<see cref="Images.ImageFolderBatches.Transform"/>: N×3×S×S) as model
    /// input, through <paramref name="augment"/> first when it works on decoded batches (as <see cref="Gather"/> applies it).
    /// </summary>
    internal Tensor FolderInput(byte[] chw, IAugmentation? augment)
    {
        int s = _folder!.Transforms.ImageSize;
        using var batch = tensor(chw, new long[] { chw.Length / (3L * s * s), 3, s, s });
        if (augment is null) return ToInput(batch.to(Labels.device));
        using var augmented = augment.Apply(batch);
        return ToInput(augmented.to(Labels.device));
    }

    /// <summary>Images <paramref name="start"/> .. start+<paramref name="length"/>-1, as model input.</summary>
    public Tensor Slice(long start, long length)
    {
        if (_folder is not null)
        {
            using var indices = arange(start, start + length, dtype: ScalarType.Int64);
            using var batch = _folder.Batch(indices);
            return ToInput(batch.to(Labels.device));
        }
        using var bytes = Pixels.narrow(0, start, length);
        return ToInput(bytes);
    }

    Tensor ToInput(Tensor bytes)
    {
        using var scope = NewDisposeScope();
        // ToTensor divides in float32 and Normalize works on that; the reference converts to float64 afterwards.
        // Scalars are made and disposed here: an implicit one lives (in the C library's heap) until a garbage
        // collection finalizes it, and such stragglers between a step's large blocks fragment the heap.
        using TorchSharp.Scalar maxByte = 255.0f;
        var x = bytes.to_type(ScalarType.Float32).div_(maxByte);
        if (_mean is not null && _std is not null)
        {
            if (_mean.Length == 1)
            {
                using TorchSharp.Scalar mean = _mean[0], std = _std[0];
                x = x.sub_(mean).div_(std);
            }
            else
            {
                var shape = new long[] { 1, _mean.Length, 1, 1 };
                x = x.sub_(tensor(_mean.Select(m => (float)m).ToArray(), shape)).div_(tensor(_std!.Select(v => (float)v).ToArray(), shape));
            }
        }
        x = x.to_type(_dtype);
        if (_channelsLast) x = MemoryFormat.ToChannelsLast(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads a split of <paramref name="spec"/> from torchvision's layout under <paramref name="root"/>.
    /// <paramref name="limit"/> keeps the first N images. Labels must lie in 0..<paramref name="numClasses"/>-1.
    /// </summary>
    public static ImageSplit Load(DatasetSpec spec, string root, bool train, int? limit, int numClasses,
        bool normalize, ScalarType dtype, Device device, bool channelsLast = false)
    {
        var raw = spec.Files.Read(root, train, spec.Channels, spec.Height, spec.Width);
        raw.CheckLabels(numClasses);

        int n = limit is int l ? Math.Min(l, raw.Count) : raw.Count;
        int pixels = spec.Channels * spec.Height * spec.Width;
        using var scope = NewDisposeScope();
        var pixelBytes = n == raw.Count ? raw.Pixels : raw.Pixels.AsSpan(0, n * pixels).ToArray();
        var x = tensor(pixelBytes, new long[] { n, spec.Channels, spec.Height, spec.Width });
        var y = tensor(raw.Labels.AsSpan(0, n).ToArray(), new long[] { n }).to_type(ScalarType.Int64);
        return new ImageSplit(x.to(device).MoveToOuterDisposeScope(), y.to(device).MoveToOuterDisposeScope(), raw.Source,
            normalize ? spec.Mean : null, normalize ? spec.Std : null, dtype, channelsLast);
    }

    /// <summary>
    /// The images at <paramref name="indices"/>, in that order, as a split of their own (what <c>Subset(dataset,
    /// indices)</c> yields), from the same <see cref="Source"/> and converted the same way.
    /// </summary>
    public ImageSplit Subset(long[] indices)
    {
        using var scope = NewDisposeScope();
        var at = tensor(indices, dtype: ScalarType.Int64).to(Pixels.device);
        var pixels = _folder is null ? Pixels.index_select(0, at) : Pixels.clone();
        return new ImageSplit(pixels.MoveToOuterDisposeScope(), Labels.index_select(0, at.to(Labels.device)).MoveToOuterDisposeScope(),
            Source, _mean, _std, _dtype, _channelsLast, _folder?.Subset(indices));
    }

    /// <summary>No images (for sessions that only predict).</summary>
    public static ImageSplit Empty(DatasetSpec spec, ScalarType dtype, Device device) =>
        new(zeros(new long[] { 0, spec.Channels, spec.Height, spec.Width }, dtype: ScalarType.Byte, device: device),
            zeros(new long[] { 0 }, dtype: ScalarType.Int64, device: device), "", null, null, dtype, false);

    public void Dispose() { Pixels.Dispose(); Labels.Dispose(); }
}
