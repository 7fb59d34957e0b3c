using static TorchSharp.torch;

namespace ResnetMnist.Data.Images;

/// <summary>
/// An augmentation applied to each image as its file is decoded, before the images share a size (torchvision's
/// transforms on PIL images inside <c>Dataset.__getitem__</c>): the draws are made image by image in batch order, on
/// the calling thread, from the global generator; the image work that follows needs no draw and may run in parallel.
/// </summary>
public interface IImageAugmentation : IAugmentation
{
    /// <summary>The draws for one image of <paramref name="height"/> × <paramref name="width"/> pixels, in torchvision's order,
    /// from <paramref name="generator"/> (null: the global generator).</summary>
    ResizedCropFlip.Draws Draw(int height, int width, Generator? generator = null);

    /// <summary>The image transformed for <paramref name="draws"/> into <paramref name="transforms"/>' square (no draw).</summary>
    RgbImage Apply(RgbImage image, ResizedCropFlip.Draws draws, ImageTransforms transforms);
}

/// <summary>
/// imagefolder's <c>data.augment</c>: torchvision's <c>RandomResizedCrop(image_size)</c> then
/// <c>RandomHorizontalFlip()</c> (<see cref="ImageTransforms.RandomResizedCropParams"/>,
/// <see cref="ImageTransforms.DrawFlip"/>), applied to each image as it is decoded (<see cref="ImageFolderBatches"/>).
/// </summary>
public sealed class ResizedCropFlip : IImageAugmentation
{
    public static readonly ResizedCropFlip Instance = new();

    /// <summary>One image's draws: the crop box in the decoded image and whether to flip.</summary>
    public readonly record struct Draws(ImageTransforms.CropBox Box, bool Flip);

    public Draws Draw(int height, int width, Generator? generator = null)
    {
        var box = ImageTransforms.RandomResizedCropParams(height, width, generator);
        return new Draws(box, ImageTransforms.DrawFlip(generator));
    }

    public RgbImage Apply(RgbImage image, Draws draws, ImageTransforms transforms) => transforms.Apply(image, draws.Box, draws.Flip);

    /// <summary>
    /// On images already decoded into a uint8 N×3×S×S batch: each image, in order, as a PIL image of those bytes
    /// through <c>RandomResizedCrop(S)</c> and <c>RandomHorizontalFlip()</c>; the batch keeps its shape.
    /// </summary>
    public Tensor Apply(Tensor batch)
    {
        if (batch.dim() != 4 || batch.shape[1] != 3 || batch.shape[2] != batch.shape[3])
            throw new ArgumentException($"expected an N×3×S×S batch, got [{string.Join(", ", batch.shape)}]");
        int n = (int)batch.shape[0], s = (int)batch.shape[2];
        long size = 3L * s * s;
        byte[] chw;
        using (var cpu = batch.cpu().contiguous()) chw = cpu.data<byte>().ToArray();
        var transforms = new ImageTransforms(s, s);
        var result = new byte[chw.Length];
        for (int i = 0; i < n; i++)
        {
            var image = FromChw(chw, i * size, s);
            var draws = Draw(s, s);
            ImageTransforms.ToChw(Apply(image, draws, transforms), result, i * size);
        }
        return tensor(result, batch.shape).to(batch.device);
    }

    /// <summary>C×H×W bytes at <paramref name="offset"/> as an RGB image (HWC).</summary>
    static RgbImage FromChw(byte[] chw, long offset, int side)
    {
        long plane = (long)side * side;
        var image = new RgbImage(side, side);
        for (long i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                image.Pixels[3 * i + c] = chw[offset + c * plane + i];
        return image;
    }
}
