using System.Diagnostics;
using NUnit.Framework;

namespace ResnetMnist.ParityTests;

/// <summary>
/// Runs the reference PyTorch (Debian's python3-torch; <c>REFERENCE_PYTHON</c>, default <c>/usr/bin/python3</c>).
/// A test that needs it calls <see cref="RequireTorch"/> (or <see cref="Run"/>, which does): where PyTorch is not
/// installed the test is skipped with the reason and the install command, so that the suite passes with only .NET;
/// CI installs PyTorch and counts any skipped test as a failure.
/// </summary>
public static class Python
{
    public const string InstallCommand = "apt-get install -y python3-torch python3-torchvision python3-yaml";

    public static string Exe => Environment.GetEnvironmentVariable("REFERENCE_PYTHON") ?? "/usr/bin/python3";

    static readonly Lazy<string?> Missing = new(() =>
    {
        if (!File.Exists(Exe)) return $"{Exe} not found";
        var (rc, _, err) = Exec("import torch, torchvision, yaml", []);
        return rc == 0 ? null : (err.Trim().Split('\n').LastOrDefault() ?? $"exit {rc}");
    });

    /// <summary>True when the reference PyTorch can be imported.</summary>
    public static bool HasTorch => Missing.Value is null;

    /// <summary>Skips the calling test (NUnit Ignore, with the reason and the install command) when PyTorch is missing.</summary>
    public static void RequireTorch()
    {
        if (Missing.Value is { } why)
            Assert.Ignore($"needs the reference PyTorch ({why}); install it with `{InstallCommand}` (or set REFERENCE_PYTHON)");
    }

    /// <summary>Skips the calling test when the reference Python lacks <paramref name="module"/> (besides PyTorch), naming the package that provides it.</summary>
    public static void RequireModule(string module, string debianPackage)
    {
        RequireTorch();
        var (rc, _, err) = Exec($"import {module}", []);
        if (rc != 0)
            Assert.Ignore($"needs the Python package {module} ({err.Trim().Split('\n').LastOrDefault()}); install it with `apt-get install -y {debianPackage}`");
    }

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/> (sys.argv[1:]); skips without PyTorch, fails on a non-zero exit. Returns stdout.</summary>
    public static string Run(string script, params string[] args)
    {
        RequireTorch();
        var (rc, stdout, stderr) = Exec(script, args);
        Assert.That(rc, Is.EqualTo(0), $"python exited with {rc}:\n{stderr}\n{stdout}");
        return stdout;
    }

    /// <summary>Runs the interpreter to its end (stopping it at <see cref="TestEnvironment.SafetyCap"/> if it hangs).</summary>
    static (int, string, string) Exec(string script, string[] args)
    {
        var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // The reference interpreter runs with the user's HOME (its packages may be under ~/.local): it looks up no cache.
        foreach (var (name, value) in TestEnvironment.User)
            if (value is null) psi.Environment.Remove(name); else psi.Environment[name] = value;
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        if (!proc.WaitForExit(TestEnvironment.SafetyCap))
        {
            proc.Kill(entireProcessTree: true);
            TestEnvironment.FailCapped($"{Exe} -c {script.Split('\n')[0]}", stdout.Result);
        }
        return (proc.ExitCode, stdout.Result, stderr.Result);
    }
}
