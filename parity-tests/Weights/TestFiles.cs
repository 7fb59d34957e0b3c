using System.Diagnostics;
using NUnit.Framework;
using ResnetMnist.Weights;

namespace ResnetMnist.ParityTests.Weights;

/// <summary>Converted ML.NET weights and PyTorch-written files, made once per test run in a temp folder.</summary>
public static class TestFiles
{
    public static string Dir { get; } = Directory.CreateDirectory(
        Path.Combine(Path.GetTempPath(), $"resnet-mnist-weights-tests-{Environment.ProcessId}")).FullName;

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

/// <summary>Runs Debian's PyTorch (<c>/usr/bin/python3</c>) from tests.</summary>
public static class PyTorch
{
    const string Python = "/usr/bin/python3";
    static readonly Lazy<string?> problem = new(() =>
    {
        if (!File.Exists(Python)) return $"{Python} not found";
        var (rc, _, err) = Exec("import torch, torchvision", []);
        return rc == 0 ? null : err;
    });

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/> (sys.argv[1:]); fails the test on a non-zero exit. Returns stdout.</summary>
    public static string Run(string script, params string[] args)
    {
        if (problem.Value is { } p)
            Assert.Fail($"This test needs PyTorch for {Python}: apt-get install -y python3-torch python3-torchvision ({p.Trim()})");
        var (rc, output, err) = Exec(script, args);
        if (rc != 0) Assert.Fail($"python exited with {rc}:\n{err}\n{output}");
        return output;
    }

    static (int, string, string) Exec(string script, string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        if (!proc.WaitForExit(TimeSpan.FromMinutes(5))) { proc.Kill(entireProcessTree: true); return (-1, stdout.Result, "timed out"); }
        return (proc.ExitCode, stdout.Result, stderr.Result);
    }
}

public static class TensorAssertions
{
    /// <summary>Same dtype, shape and values (bit for bit).</summary>
    public static bool Same(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
