using System.Diagnostics;

namespace ResnetMnist.ParityTests;

/// <summary>Runs the built tool (resnet-mnist.dll, copied beside the tests) in a fresh process.</summary>
public static class ToolProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "resnet-mnist.dll");

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }
}
