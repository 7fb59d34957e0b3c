using System.Diagnostics;
using NUnit.Framework;

namespace ResnetMnist.ParityTests;

/// <summary>Runs the reference PyTorch (Debian's python3-torch, /usr/bin/python3); fails, never skips, when it is missing.</summary>
public static class Python
{
    public static string Exe => Environment.GetEnvironmentVariable("REFERENCE_PYTHON") ?? "/usr/bin/python3";

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

    /// <summary>Skips the calling test, with the install command, when the reference interpreter has no PyTorch.</summary>
    public static void RequireTorch()
    {
        var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import torch");
        try
        {
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode == 0) return;
        }
        catch (System.ComponentModel.Win32Exception) { }
        Assert.Ignore($"PyTorch is not installed for {Exe}: apt-get install -y python3-torch python3-torchvision python3-yaml");
    }
}
