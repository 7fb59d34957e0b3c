using System.Diagnostics;
using NUnit.Framework;

namespace ResnetMnist.ParityTests;

/// <summary>Runs the reference PyTorch (Debian's python3-torch, /usr/bin/python3); fails, never skips, when it is missing.</summary>
public static class Python
{
    public static string Exe => Environment.GetEnvironmentVariable("REFERENCE_PYTHON") ?? "/usr/bin/python3";

    public const string InstallCommand = "apt-get install -y python3-torch python3-torchvision python3-yaml";

    static readonly Lazy<string?> Missing = new(() =>
    {
        try
        {
            var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import torch, torchvision, yaml");
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? null : err.Result.Trim().Split('\n').LastOrDefault() ?? $"exit code {p.ExitCode}";
        }
        catch (System.ComponentModel.Win32Exception e) { return e.Message; }
    });

    /// <summary>
    /// For tests that run the reference PyTorch: skips the test, visibly, with the install command when
    /// <see cref="Exe"/> cannot import torch, torchvision and yaml. Mark such tests <c>[Category("NeedsPyTorch")]</c>.
    /// </summary>
    public static void RequireTorch()
    {
        if (Missing.Value is string why)
            Assert.Ignore($"needs the reference PyTorch ({Exe}: {why}); install it with `{InstallCommand}`");
    }

    public static string Run(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Fail($"{Exe} not found: install the reference PyTorch with `apt-get install -y python3-torch python3-torchvision python3-yaml`");
            throw;
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (stderr.Contains("No module named 'torch'") || stderr.Contains("No module named 'torchvision'"))
            Assert.Fail($"{Exe} has no torch/torchvision: `apt-get install -y python3-torch python3-torchvision python3-yaml`");
        Assert.That(p.ExitCode, Is.EqualTo(0), $"python failed: {stderr}");
        return stdout.Result;
    }
}
