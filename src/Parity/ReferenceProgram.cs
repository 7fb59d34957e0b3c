using System.ComponentModel;
using System.Diagnostics;
using ResnetMnist.Native;

namespace ResnetMnist.Parity;

/// <summary>No Python with torch, torchvision and yaml was found: the message says how to get one.</summary>
public sealed class ReferenceUnavailableException(string message) : Exception(message);

/// <summary>The reference program ran and failed (its last error line is in the message; the full log is beside it).</summary>
public sealed class ReferenceFailedException(string message) : Exception(message);

/// <summary>Runs <c>reference/resnet_mnist.py</c> (the original PyTorch program) in a child process.</summary>
public sealed class ReferenceProgram
{
    /// <summary>How to get the reference PyTorch where it is missing.</summary>
    public const string InstallHint =
        "install it with `apt-get install -y python3-torch python3-torchvision python3-yaml` (Debian 12 / Ubuntu), " +
        "or pass --python PATH to a Python that has torch, torchvision and yaml";

    /// <summary>The interpreter used when none is given: Debian's, where python3-torch installs.</summary>
    public const string DefaultPython = "/usr/bin/python3";

    public string Python { get; }
    public string Script { get; }
    /// <summary>torch.__version__ of the interpreter (found by <see cref="Find"/>).</summary>
    public string TorchVersion { get; }

    ReferenceProgram(string python, string script, string torchVersion) => (Python, Script, TorchVersion) = (python, script, torchVersion);

    /// <summary>
    /// Checks that <paramref name="python"/> (default <see cref="DefaultPython"/>) imports torch, torchvision and yaml,
    /// and that the script exists; throws <see cref="ReferenceUnavailableException"/> otherwise.
    /// </summary>
    public static ReferenceProgram Find(string script, string? python = null)
    {
        python ??= DefaultPython;
        if (!File.Exists(script))
            throw new ReferenceUnavailableException($"{script}: the reference program is missing (it ships beside the tool as reference/resnet_mnist.py)");
        var (code, stdout, stderr) = Execute(python, ["-c", "import torch, torchvision, yaml; print(torch.__version__)"], null, TimeSpan.FromMinutes(2));
        if (code is null)
            throw new ReferenceUnavailableException($"no PyTorch found: {python} cannot be run ({stderr}); {InstallHint}");
        if (code != 0)
        {
            var why = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"exit code {code}";
            throw new ReferenceUnavailableException($"no PyTorch found: {python} cannot import torch, torchvision and yaml ({why}); {InstallHint}");
        }
        return new ReferenceProgram(python, script, stdout.Trim());
    }

    /// <summary>
    /// Runs the program with <paramref name="args"/> and <paramref name="threads"/> intra-op threads, with
    /// <c>ATEN_CPU_CAPABILITY</c> set to the kernel set this process's libtorch runs (<see cref="KernelSet.Current"/>:
    /// PyTorch 1.13 and libtorch 2.10 do not pick the same one by default on every CPU), so that both use the same
    /// CPU kernels; oneDNN/MKL limits this process has (set with a requested kernel set) are inherited. Writes its
    /// output to <paramref name="log"/>. Throws <see cref="ReferenceFailedException"/> when it fails.
    /// </summary>
    public void Run(IEnumerable<string> args, int threads, string log)
    {
        var env = new Dictionary<string, string?>
        {
            ["ATEN_CPU_CAPABILITY"] = KernelSet.Current,
            // torch.set_num_threads(threads) is what sets the count; these keep OpenMP/MKL from starting more.
            ["OMP_NUM_THREADS"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["MKL_NUM_THREADS"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var all = new List<string> { Script };
        all.AddRange(args);
        all.Add("--threads");
        all.Add(threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var (code, stdout, stderr) = Execute(Python, all, env, Timeout.InfiniteTimeSpan);
        ResnetMnist.Outputs.AtomicFile.WriteAllText(log, $"$ {Python} {string.Join(' ', all)}\n{stdout}{stderr}");
        if (code != 0)
        {
            var last = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"exit code {code}";
            throw new ReferenceFailedException($"the reference program failed: {last} (full output in {log})");
        }
    }

    /// <returns>Exit code, or null when the program could not be started (then stderr holds the reason).</returns>
    static (int? Code, string Stdout, string Stderr) Execute(string exe, IEnumerable<string> args, IDictionary<string, string?>? env, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        Process p;
        try { p = Process.Start(psi) ?? throw new Win32Exception("not started"); }
        catch (Win32Exception e) { return (null, "", e.Message); }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                return (-1, stdout.Result, stderr.Result + $"\ntimed out after {timeout.TotalSeconds:F0} s");
            }
            p.WaitForExit();
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
