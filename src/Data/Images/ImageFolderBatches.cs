using static TorchSharp.torch;

namespace ResnetMnist.Data.Images;

/// <summary>
/// Makes batches of an <see cref="ImageFolder"/> on demand, as torchvision's DataLoader over
/// <c>ImageFolder(root, transform)</c> makes them: each image is read and decoded when its batch is asked for (none is
/// kept decoded), transformed, and the batch stacked as N×3×S×S bytes (<c>ToTensor</c>'s layout before it scales).
/// Decoding and resizing run in parallel over the batch (at most <see cref="Workers"/> at once); the random draws of
/// the training transform run in between, on one thread, image by image in batch order, from one generator (the
/// global one unless told otherwise), exactly where torchvision's <c>__getitem__</c> draws them (they depend only on
/// each image's size). <c>Training.BatchStream</c> prepares the next batch this way while the current one trains.
/// </summary>
public sealed class ImageFolderBatches(ImageFolder folder, ImageTransforms transforms, int workers)
{
    public ImageFolder Folder { get; } = folder;
    public ImageTransforms Transforms { get; } = transforms;
    /// <summary>Images decoded at once (threads).</summary>
    public int Workers { get; } = Math.Max(1, workers);

    /// <summary>
    /// The images at <paramref name="indices"/> (int64, any device), transformed. An <see cref="IImageAugmentation"/>
    /// (imagefolder's training transform) is applied as each image is decoded; without one, the evaluation transform,
    /// then any other <paramref name="augment"/> on the decoded batch.
    /// </summary>
    public Tensor Batch(Tensor indices, IAugmentation? augment = null)
    {
        long[] idx;
        using (var cpu = indices.cpu()) idx = cpu.data<long>().ToArray();
        var perImage = augment as IImageAugmentation;
        var batch = tensor(Transform(idx, perImage), new long[] { idx.Length, 3, Transforms.ImageSize, Transforms.ImageSize });
        if (augment is null || perImage is not null) return batch;
        using (batch) return augment.Apply(batch);
    }

    /// <summary>
    /// The pixel work of <see cref="Batch"/>: reads and decodes the images at <paramref name="indices"/> (in parallel),
    /// makes <paramref name="augment"/>'s draws image by image in order from <paramref name="generator"/> (null: the
    /// global generator), then transforms them (in parallel; the evaluation transform without <paramref name="augment"/>).
    /// Returns N×3×S×S bytes. A file that is not an image throws its own error (the lowest index's) before any draw.
    /// </summary>
    /// <param name="cancel">Stops the work between images (<see cref="OperationCanceledException"/>).</param>
    public byte[] Transform(long[] indices, IImageAugmentation? augment, Generator? generator = null, CancellationToken cancel = default)
    {
        int n = indices.Length, s = Transforms.ImageSize;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Workers, CancellationToken = cancel };
        var images = new RgbImage[n];
        ForEach(n, options, i => images[i] = ImageFile.Read(Folder.Files[(int)indices[i]]));
        var draws = new ResizedCropFlip.Draws[n];
        if (augment is not null)
            for (int i = 0; i < n; i++) draws[i] = augment.Draw(images[i].Height, images[i].Width, generator);
        var chw = new byte[(long)n * 3 * s * s];
        ForEach(n, options, i =>
        {
            var img = augment is not null ? augment.Apply(images[i], draws[i], Transforms) : Transforms.Eval(images[i]);
            images[i] = null!;
            ImageTransforms.ToChw(img, chw, (long)i * 3 * s * s);
        });
        return chw;
    }

    /// <summary>The images at <paramref name="indices"/>, in that order, as batches of their own (<c>Subset(dataset, indices)</c>).</summary>
    public ImageFolderBatches Subset(long[] indices) => new(Folder.Subset(indices), Transforms, Workers);

    /// <summary>Runs <paramref name="body"/> for 0..n-1 in parallel; a failure rethrows the first failed image's own exception (lowest index), not an aggregate.</summary>
    static void ForEach(int n, ParallelOptions options, Action<int> body)
    {
        var errors = new Exception?[n];
        Parallel.For(0, n, options, i =>
        {
            try { body(i); }
            catch (Exception e) { errors[i] = e; }
        });
        if (errors.FirstOrDefault(e => e is not null) is { } first)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
    }
}
