using System.Text.Json;
using NUnit.Framework;
using ResnetMnist.Data.Images;
using static TorchSharp.torch;

namespace ResnetMnist.ParityTests.Data;

/// <summary>
/// The image reader and torchvision's transforms against real Pillow 9.4 / torchvision 0.14: reference/make_pillow_checks.py
/// writes PNGs of every colour type and bit depth (plain and Adam7-interlaced, with and without tRNS, palettes shorter
/// than their indices) and JPEGs (RGB at qualities 10..100 and subsamplings 4:4:4, 4:2:2, 4:2:0, baseline and
/// progressive; grey; CMYK), of sizes 1..301 pixels, together with Pillow's <c>convert('RGB')</c>, bilinear resizes to
/// assorted sizes (shrinking and enlarging, odd sizes), the eval transform and three draws of RandomResizedCrop +
/// RandomHorizontalFlip under a seed. Every comparison is byte for byte.
/// </summary>
[TestFixture, Category("Data"), NonParallelizable]
public sealed class PillowImageTests
{
    const int Images = 96;

    static readonly Lazy<string> Dir = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("resnet-mnist-pillow-").FullName;
        Python.Run(File.ReadAllText(Repo.Path("reference", "make_pillow_checks.py")), dir, Images.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return dir;
    });

    [OneTimeTearDown]
    public void Remove()
    {
        if (Dir.IsValueCreated) try { Directory.Delete(Dir.Value, recursive: true); } catch (IOException) { }
    }

    static List<JsonElement> Manifest()
    {
        Python.RequireTorch();
        Assert.That(JpegDecoder.Available, $"libturbojpeg.so.0 is missing: apt-get install -y {JpegDecoder.Package}");
        return JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir.Value, "manifest.json"))).RootElement.EnumerateArray().ToList();
    }

    static byte[] Expected(string file) => File.ReadAllBytes(Path.Combine(Dir.Value, file));

    static void AssertBytes(RgbImage actual, int width, int height, string file, string what)
    {
        Assert.That((actual.Width, actual.Height), Is.EqualTo((width, height)), $"{what}: size");
        var expected = Expected(file);
        int first = -1, count = 0;
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual.Pixels[i]) { if (first < 0) first = i; count++; }
        Assert.That(count, Is.Zero, $"{what}: {count} of {expected.Length} bytes differ, first at {first} (pixel {first / 3}: Pillow {(first >= 0 ? expected[first] : 0)}, ours {(first >= 0 ? actual.Pixels[first] : 0)})");
    }

    static RgbImage Decode(JsonElement r) => ImageFile.Read(Path.Combine(Dir.Value, r.GetProperty("file").GetString()!));

    static string What(JsonElement r) => $"{r.GetProperty("file").GetString()} ({r.GetProperty("kind").GetString()}, {r.GetProperty("width").GetInt32()}×{r.GetProperty("height").GetInt32()})";

    [Test]
    public void DecodingEqualsPillowConvertRgb()
    {
        var kinds = new HashSet<string>();
        foreach (var r in Manifest())
        {
            AssertBytes(Decode(r), r.GetProperty("width").GetInt32(), r.GetProperty("height").GetInt32(), r.GetProperty("decoded").GetString()!, What(r));
            kinds.Add(r.GetProperty("kind").GetString()!.Split(" q")[0].Replace(" tRNS", "").Replace(" interlaced", ""));
        }
        Assert.That(kinds, Has.Count.GreaterThanOrEqualTo(18), "every PNG colour type/depth and every JPEG mode was covered");
    }

    [Test]
    public void BilinearResizeEqualsPillow()
    {
        int n = 0;
        foreach (var r in Manifest())
        {
            var img = Decode(r);
            foreach (var z in r.GetProperty("resized").EnumerateArray())
            {
                int w = z.GetProperty("width").GetInt32(), h = z.GetProperty("height").GetInt32();
                AssertBytes(PillowResize.Resize(img, w, h), w, h, z.GetProperty("file").GetString()!, $"{What(r)} resized to {w}×{h}");
                n++;
            }
        }
        Assert.That(n, Is.EqualTo(4 * Images));
    }

    [Test]
    public void EvalTransformEqualsTorchvision()
    {
        foreach (var r in Manifest())
        {
            int s = r.GetProperty("image_size").GetInt32();
            var t = new ImageTransforms(s, r.GetProperty("resize_size").GetInt32());
            AssertBytes(t.Eval(Decode(r)), s, s, r.GetProperty("eval").GetString()!, $"{What(r)} Resize({t.ResizeSize}) + CenterCrop({s})");
        }
    }

    [Test]
    public void RandomResizedCropAndFlipEqualTorchvisionDrawForDraw()
    {
        foreach (var r in Manifest())
        {
            int s = r.GetProperty("image_size").GetInt32();
            var t = new ImageTransforms(s, s);
            var img = Decode(r);
            manual_seed(r.GetProperty("seed").GetInt64());
            int k = 0;
            foreach (var f in r.GetProperty("train").EnumerateArray())
                AssertBytes(t.Train(img), s, s, f.GetString()!, $"{What(r)} RandomResizedCrop({s}) + flip, draw {k++}");
            using var after = rand(1);
            Assert.That((double)after.item<float>(), Is.EqualTo(r.GetProperty("after").GetDouble()), $"{What(r)}: the generator after the draws");
        }
    }
}
