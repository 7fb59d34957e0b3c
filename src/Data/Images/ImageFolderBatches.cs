using static TorchSharp.torch;

namespace ResnetMnist.Data.Images;

/// <summary>
/// Makes batches of an <see cref="ImageFolder"/> on demand, as torchvision's DataLoader over
/// <c>ImageFolder(root, transform)</c> makes them: each image is read and decoded when its batch is asked for (none is
/// kept decoded), transformed, and the batch stacked as N×3×S×S bytes (<c>ToTensor</c>'s layout before it scales).
/// Decoding and resizing run in parallel over the batch (at most <see cref="Workers"/> at once); the random draws of
/// the training transform run first, on the calling thread, image by image in batch order, from the global generator,
/// exactly where torchvision's <c>__getitem__</c> draws them (they depend only on each image's size).
/// </summary>
public sealed class ImageFolderBatches(ImageFolder folder, ImageTransforms transforms, int workers)
{
    public ImageFolder Folder { get; } = folder;
    public ImageTransforms Transforms { get; } = transforms;
    /// <summary>Images decoded at once (threads).</summary>
    public int Workers { get; } = Math.Max(1, workers);

    /// <summary>The images at <paramref name="indices"/> (int64, any device), transformed: training (random) or evaluation.</summary>
    public Tensor Batch(Tensor indices, bool train)
    {
        long[] idx;
        using (var cpu = indices.cpu()) idx = cpu.data<long>().ToArray();
        int n = idx.Length, s = Transforms.ImageSize;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Workers };
        var images = new RgbImage[n];
        ForEach(n, options, i => images[i] = ImageFile.Read(Folder.Files[(int)idx[i]]));
        var boxes = new ImageTransforms.CropBox[n];
        var flips = new bool[n];
        if (train)
            for (int i = 0; i < n; i++)
            {
                boxes[i] = ImageTransforms.RandomResizedCropParams(images[i].Height, images[i].Width);
                flips[i] = ImageTransforms.DrawFlip();
            }
        var chw = new byte[(long)n * 3 * s * s];
        ForEach(n, options, i =>
        {
            var img = train ? Transforms.Apply(images[i], boxes[i], flips[i]) : Transforms.Eval(images[i]);
            images[i] = null!;
            ImageTransforms.ToChw(img, chw, (long)i * 3 * s * s);
        });
        return tensor(chw, new long[] { n, 3, s, s });
    }

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
