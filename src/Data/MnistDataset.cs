using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Data;

/// <summary>
/// One split of MNIST-like data held as tensors on the training device: <see cref="Pixels"/> N×1×28×28 bytes (as
/// in the file: a quarter of the memory of float pixels) and <see cref="Labels"/> N int64. A batch is gathered by
/// index and converted as torchvision's <c>ToTensor()</c> does (bytes / 255 in float32, optionally normalised,
/// then the training dtype, in channels-last layout with <c>model.channels_last</c>): no per-image work.
/// </summary>
public sealed class MnistDataset : IDisposable
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
    readonly bool _normalize, _channelsLast;
    readonly ScalarType _dtype;

    MnistDataset(Tensor pixels, Tensor labels, string source, bool normalize, ScalarType dtype, bool channelsLast)
    {
        (Pixels, Labels, Source, _normalize, _dtype, _channelsLast) = (pixels, labels, source, normalize, dtype, channelsLast);
    }

    /// <summary>The images at <paramref name="indices"/>, as model input (dtype of the session).</summary>
    public Tensor Gather(Tensor indices)
    {
        using var bytes = Pixels.index_select(0, indices);
        return ToInput(bytes);
    }

    /// <summary>Images <paramref name="start"/> .. start+<paramref name="length"/>-1, as model input.</summary>
    public Tensor Slice(long start, long length)
    {
        using var bytes = Pixels.narrow(0, start, length);
        return ToInput(bytes);
    }

    Tensor ToInput(Tensor bytes)
    {
        using var scope = NewDisposeScope();
        // ToTensor divides in float32 and Normalize works on that; the reference converts to float64 afterwards.
        var x = bytes.to_type(ScalarType.Float32).div_(255.0f);
        if (_normalize) x = x.sub_(NormMean).div_(NormStd);
        x = x.to_type(_dtype);
        if (_channelsLast) x = MemoryFormat.ToChannelsLast(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>MNIST's mean and std of ToTensor pixels, as in the usual <c>Normalize((0.1307,), (0.3081,))</c>.</summary>
    public const double NormMean = 0.1307, NormStd = 0.3081;

    /// <summary>
    /// Loads a split from torchvision's layout under <paramref name="root"/>. <paramref name="limit"/> keeps the
    /// first N images. Labels must lie in 0..<paramref name="numClasses"/>-1.
    /// </summary>
    public static MnistDataset Load(MnistFiles files, string root, bool train, int? limit, int numClasses,
        bool normalize, ScalarType dtype, Device device, bool channelsLast = false)
    {
        var imagesName = train ? MnistFiles.TrainImages : MnistFiles.TestImages;
        var labelsName = train ? MnistFiles.TrainLabels : MnistFiles.TestLabels;
        var imagesPath = files.Find(root, imagesName) ?? throw Missing(files, root, imagesName);
        var labelsPath = files.Find(root, labelsName) ?? throw Missing(files, root, labelsName);

        var images = Idx.ReadImages(imagesPath);
        var labels = Idx.ReadLabels(labelsPath);
        if (images.Count != labels.Length)
            throw new DataException($"{imagesPath}: {images.Count} images but {labelsPath} has {labels.Length} labels");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= numClasses)
                throw new DataException($"{labelsPath}: label {labels[i]} at index {i} is outside 0..{numClasses - 1} (model.num_classes: {numClasses})");

        int n = limit is int l ? Math.Min(l, images.Count) : images.Count;
        int pixels = images.Rows * images.Cols;
        using var scope = NewDisposeScope();
        var pixelBytes = n == images.Count ? images.Pixels : images.Pixels.AsSpan(0, n * pixels).ToArray();
        var x = tensor(pixelBytes, new long[] { n, 1, images.Rows, images.Cols });
        var y = tensor(labels.AsSpan(0, n).ToArray(), new long[] { n }).to_type(ScalarType.Int64);
        return new MnistDataset(x.to(device).MoveToOuterDisposeScope(), y.to(device).MoveToOuterDisposeScope(), imagesPath, normalize, dtype, channelsLast);
    }

    /// <summary>No images (for sessions that only predict).</summary>
    public static MnistDataset Empty(ScalarType dtype, Device device) =>
        new(zeros(new long[] { 0, 1, 28, 28 }, dtype: ScalarType.Byte, device: device), zeros(new long[] { 0 }, dtype: ScalarType.Int64, device: device), "", false, dtype, false);

    static DataException Missing(MnistFiles files, string root, string name) =>
        new($"{Path.Combine(files.RawDir(root), name)}(.gz): file not found; put torchvision's {files.Folder} files in " +
            $"{files.RawDir(root)}, set data.download: true, or run `dotnet resnet-mnist data fetch`");

    public void Dispose() { Pixels.Dispose(); Labels.Dispose(); }
}
