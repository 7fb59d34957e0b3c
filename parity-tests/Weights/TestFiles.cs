using System.Diagnostics;
using NUnit.Framework;
using ResnetMnist.Weights;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>Converted ML.NET weights and PyTorch-written files, made once per test run in a temp folder.</summary>
public static class TestFiles
{
    public static string Dir { get; } = TempDir.New("weights");

    static readonly Lazy<(string Path, double Seconds)> folded = new(() => Timed(() => MlnetImporter.EnsureConverted(true, Path.Combine(Dir, "cache"))));
    static readonly Lazy<(string Path, double Seconds)> unfolded = new(() => Timed(() => MlnetImporter.EnsureConverted(false, Path.Combine(Dir, "cache"))));

    /// <summary>resnet18-mlnet.pth (preprocessing folded), converted into <see cref="Dir"/>.</summary>
    public static string MlnetPth => folded.Value.Path;
    public static double MlnetConversionSeconds => folded.Value.Seconds;
    public static string MlnetSafetensors => Path.ChangeExtension(MlnetPth, ".safetensors");
    /// <summary>resnet18-mlnet-unfolded.pth (exact mapping).</summary>
    public static string MlnetUnfoldedPth => unfolded.Value.Path;

    static (string, double) Timed(Func<string> f)
    {
        var sw = Stopwatch.StartNew();
        var p = f();
        return (p, sw.Elapsed.TotalSeconds);
    }
}

[SetUpFixture]
public sealed class WeightsTestCleanup
{
    [OneTimeTearDown]
    public void RemoveTempFiles()
    {
        try { Directory.Delete(TestFiles.Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public static class TensorAssertions
{
    /// <summary>Same dtype, shape and values (bit for bit).</summary>
    public static bool Same(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
