using System.Text.Json.Nodes;
using NUnit.Framework;
using ResnetMnist.Data;
using ResnetMnist.ParityTests.Robustness;
using SkiaSharp;

namespace ResnetMnist.ParityTests.Data;

/// <summary>
/// predict on a photo-like image of a digit: MNIST's own convention (crop to the ink, fit in 20×20, centre by centre of
/// mass in 28×28) turns a small, off-centre, dark-on-light digit on a large canvas back into the digit MNIST holds.
/// </summary>
[TestFixture, Category("Data")]
public sealed class MnistDigitTests
{
    static readonly Lazy<Idx.Images> Test = new(() => Idx.ReadImages(Repo.Path("data", "MNIST", "raw", "t10k-images-idx3-ubyte.gz")));

    static byte[] Digit(int i) => Test.Value.Pixels.AsSpan(i * 784, 784).ToArray();

    /// <summary>Mean |a − b| of two 28×28 byte images, on the 0..1 scale.</summary>
    static double MeanAbs(byte[] a, byte[] b) => a.Zip(b).Average(p => Math.Abs(p.First - p.Second)) / 255.0;

    /// <summary>
    /// The digit scaled ×<paramref name="scale"/> (nearest), dark ink on light paper (grey <paramref name="paper"/>), pasted with its top-left
    /// corner at (<paramref name="left"/>, <paramref name="top"/>) into an 800×600 canvas, as grey values 0..1.
    /// </summary>
    static float[] Canvas(byte[] digit, int scale, int left, int top, int width = 800, int height = 600, byte paper = 230)
    {
        var c = Enumerable.Repeat(paper / 255f, width * height).ToArray();
        for (int y = 0; y < 28 * scale; y++)
            for (int x = 0; x < 28 * scale; x++)
            {
                byte ink = digit[y / scale * 28 + x / scale];
                c[(top + y) * width + left + x] = Math.Min(paper, 255 - ink) / 255f;
            }
        return c;
    }

    [Test]
    public void ASmallOffCentreDarkDigitOnALargeCanvasBecomesTheMnistDigit()
    {
        for (int i = 0; i < 5; i++)
        {
            var digit = Digit(i);
            var canvas = Canvas(digit, 2, 560, 90);
            Assert.That(MnistDigit.IsDarkOnLight(canvas, 800, 600), Is.True);
            var seen = MnistDigit.Preprocess(canvas, 800, 600)!;
            // Stretching the whole canvas to 28×28 (the old way) leaves a speck: the difference from the digit is its mass.
            double moved = MeanAbs(seen, digit), blank = MeanAbs(new byte[784], digit);
            TestContext.Out.WriteLine($"digit {i}: mean |seen − MNIST| {moved:F4}, of an empty image {blank:F4}");
            Assert.That(moved, Is.LessThan(blank / 3), $"digit {i}: the preprocessed image is the digit, not a speck");
        }
    }

    [Test]
    public void ABlankImageHoldsNoDigit()
    {
        Assert.That(MnistDigit.Preprocess(Enumerable.Repeat(0.9f, 50 * 40).ToArray(), 50, 40), Is.Null);
    }

    static void WritePng(string path, float[] grey, int width, int height)
    {
        using var bmp = new SKBitmap(width, height, SKColorType.Gray8, SKAlphaType.Opaque);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                byte v = (byte)Math.Round(grey[y * width + x] * 255);
                bmp.SetPixel(x, y, new SKColor(v, v, v));
            }
        using var fs = File.Create(path);
        bmp.Encode(fs, SKEncodedImageFormat.Png, 100);
    }

    [Test]
    public void PredictOnTheLargePhotoGivesTheClassOfTheOriginalDigitAndSavesWhatTheModelSaw()
    {
        var dir = TempDir.New("mnist-photo");
        var originals = new List<string>();
        var photos = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var digit = Digit(i);
            var original = Path.Combine(dir, $"original{i}.png");
            WritePng(original, digit.Select(b => b / 255f).ToArray(), 28, 28);
            var photo = Path.Combine(dir, $"photo{i}.png");
            // pasted as it is (small: 28×28 of 800×600), dark on white paper, off centre
            WritePng(photo, Canvas(digit, 1, 560 - 40 * i, 90 + 50 * i, paper: 255), 800, 600);
            (originals, photos) = ([.. originals, original], [.. photos, photo]);
        }
        var saved = Path.Combine(dir, "seen");
        var o = Tool.Run(dir, ["predict", TrainedRun.Dir, .. originals, "--json"]);
        var p = Tool.Run(dir, ["predict", TrainedRun.Dir, .. photos, "--json", "--save-input", saved]);

        Assert.That(o.ExitCode, Is.EqualTo(0), o.ToString());
        Assert.That(p.ExitCode, Is.EqualTo(0), p.ToString());
        var want = JsonNode.Parse(o.Stdout)!["predictions"]!.AsArray().Select(x => (int)x!["class"]!).ToList();
        var got = JsonNode.Parse(p.Stdout)!["predictions"]!.AsArray().Select(x => (int)x!["class"]!).ToList();
        Assert.That(got, Is.EqualTo(want), "the photo is classified as the original 28×28 digit");

        for (int i = 0; i < 5; i++)
        {
            var png = Path.Combine(saved, $"photo{i}.png");
            using var bmp = SKBitmap.Decode(png);
            Assert.That((bmp.Width, bmp.Height), Is.EqualTo((28, 28)), png);
            var seen = Enumerable.Range(0, 784).Select(k => bmp.GetPixel(k % 28, k / 28).Red).ToArray();
            var canvas = Canvas(Digit(i), 1, 560 - 40 * i, 90 + 50 * i, paper: 255);
            Assert.That(seen, Is.EqualTo(MnistDigit.Preprocess(canvas, 800, 600)), $"{png} holds the bytes the model saw");
        }
    }
}
