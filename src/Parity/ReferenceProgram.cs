using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using ResnetMnist.Core;
using ResnetMnist.Native;

namespace ResnetMnist.Parity;

/// <summary>No Python with torch, torchvision and yaml was found: the message says how to get one.</summary>
public sealed class ReferenceUnavailableException(string message) : Exception(message);

/// <summary>The reference program ran and failed (its last error line is in the message; the full log is beside it).</summary>
public sealed class ReferenceFailedException(string message) : Exception(message);

/// <summary>
/// Runs <c>reference/resnet_mnist.py</c> (the original PyTorch program) in a child process that this process owns:
/// its output is read with a cap (<see cref="MaxOutputBytes"/> in all; the last <see cref="KeptOutputBytes"/> of each
/// stream are kept for the log and messages), and it is killed with its whole process tree when this process ends
/// for any reason it can see (SIGTERM, SIGINT, SIGHUP, normal exit, an exception). .NET cannot put a child into a
/// process group of its own before it runs (no setpgid between fork and exec), and a <c>setsid</c> trampoline would
/// change what <c>--python</c> receives; the tree is therefore walked (<see cref="Process.Kill(bool)"/>: every live
/// descendant, found through /proc), which covers the reference and the workers it starts. A SIGKILL of this
/// process cannot be forwarded by any handler.
/// </summary>
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

    /// <summary>Most bytes the child may write to stdout and stderr together before it is stopped (the reference writes a few KB per run).</summary>
    public const long MaxOutputBytes = 64L << 20;
    /// <summary>Bytes kept of each stream (the end): what the log and messages show.</summary>
    public const int KeptOutputBytes = 64 << 10;

    /// <summary>
    /// Checks that <paramref name="python"/> (default <see cref="DefaultPython"/>) imports torch, torchvision and yaml,
    /// and that the script exists; throws <see cref="ReferenceUnavailableException"/> otherwise.
    /// </summary>
    public static ReferenceProgram Find(string script, string? python = null)
    {
        python ??= DefaultPython;
        if (!File.Exists(script))
            throw new ReferenceUnavailableException($"{script}: the reference program is missing (it ships beside the tool as reference/resnet_mnist.py)");
        var r = Execute(python, ["-c", "import torch, torchvision, yaml; print(torch.__version__)"], null, TimeSpan.FromMinutes(2));
        if (r.Code is null)
            throw new ReferenceUnavailableException($"no PyTorch found: {python} cannot be run ({Printable.Escape(r.Stderr, 200)}); {InstallHint}");
        if (r.Code != 0 || r.Overflow)
            throw new ReferenceUnavailableException($"no PyTorch found: {python} cannot import torch, torchvision and yaml ({r.Why}); {InstallHint}");
        return new ReferenceProgram(python, script, Printable.Escape(r.Stdout.Trim(), 80));
    }

    /// <summary>
    /// Runs the program with <paramref name="args"/> and <paramref name="threads"/> intra-op threads, with
    /// <c>ATEN_CPU_CAPABILITY</c> set to the kernel set this process's libtorch runs (<see cref="KernelSet.Current"/>:
    /// PyTorch 1.13 and libtorch 2.10 do not pick the same one by default on every CPU), so that both use the same
    /// CPU kernels; oneDNN/MKL limits this process has (set with a requested kernel set) are inherited. Writes the
    /// end of its output to <paramref name="log"/>. Throws <see cref="ReferenceFailedException"/> when it fails,
    /// writes too much, or cannot be started.
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
        var r = Execute(Python, all, env, Timeout.InfiniteTimeSpan);
        AtomicFile.WriteAllText(log, $"$ {Python} {string.Join(' ', all)}\n{r.Stdout}{r.Stderr}");
        if (r.Code is null) throw new ReferenceFailedException($"the reference program could not be started: {Printable.Escape(r.Stderr, 200)}");
        if (r.Overflow)
            throw new ReferenceFailedException($"the reference program wrote more than {MaxOutputBytes >> 20} MiB of output and was stopped (the end of it is in {log})");
        if (r.Code != 0)
            throw new ReferenceFailedException($"the reference program failed: {r.Why} (full output in {log})");
    }

    /// <summary>What a child did: exit code (null: not started, then <see cref="Stderr"/> says why), the end of each stream, whether it was stopped for writing too much.</summary>
    sealed record Outcome(int? Code, string Stdout, string Stderr, bool Overflow)
    {
        /// <summary>The last non-empty stderr line, escaped, or the exit code.</summary>
        public string Why => Printable.Escape(Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
            ?? (Code is int c ? c switch { > 128 => $"killed by signal {c - 128}", _ => $"exit code {c}" } : "not started"), 300);
    }

    static Outcome Execute(string exe, IEnumerable<string> args, IDictionary<string, string?>? env, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        Process p;
        try { p = Process.Start(psi) ?? throw new Win32Exception("not started"); }
        catch (Win32Exception e) { return new Outcome(null, "", e.Message, false); }
        using (p)
        using (Children.Own(p))
        {
            p.StandardInput.Close();
            long total = 0;
            bool overflow = false;
            void Exceeded()
            {
                overflow = true;
                Children.Kill(p);
            }
            var stdout = Task.Run(() => Drain(p.StandardOutput.BaseStream, ref total, Exceeded));
            var stderr = Task.Run(() => Drain(p.StandardError.BaseStream, ref total, Exceeded));
            if (!p.WaitForExit(timeout))
            {
                Children.Kill(p);
                p.WaitForExit();
                return new Outcome(-1, stdout.Result, stderr.Result + $"\ntimed out after {timeout.TotalSeconds:F0} s", overflow);
            }
            p.WaitForExit();
            return new Outcome(p.ExitCode, stdout.Result, stderr.Result, overflow);
        }
    }

    /// <summary>Reads <paramref name="stream"/> to its end, keeping its last <see cref="KeptOutputBytes"/>; calls <paramref name="exceeded"/> once the shared total passes <see cref="MaxOutputBytes"/>.</summary>
    static string Drain(Stream stream, ref long total, Action exceeded)
    {
        var ring = new byte[KeptOutputBytes];
        long written = 0;
        var buffer = new byte[1 << 16];
        bool stopped = false;
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (int i = 0; i < n; )
            {
                int at = (int)(written % ring.Length), len = Math.Min(n - i, ring.Length - at);
                Array.Copy(buffer, i, ring, at, len);
                written += len;
                i += len;
            }
            if (Interlocked.Add(ref total, n) > MaxOutputBytes && !stopped)
            {
                stopped = true;
                exceeded();
            }
        }
        if (written <= ring.Length) return Encoding.UTF8.GetString(ring, 0, (int)written);
        int start = (int)(written % ring.Length);
        var tail = new byte[ring.Length];
        Array.Copy(ring, start, tail, 0, ring.Length - start);
        Array.Copy(ring, 0, tail, ring.Length - start, start);
        return $"[... {written - ring.Length} earlier bytes not kept ...]\n" + Encoding.UTF8.GetString(tail);
    }

    /// <summary>The children this process has running, killed (with their trees) when it ends.</summary>
    static class Children
    {
        static readonly object Gate = new();
        static readonly HashSet<Process> Running = [];
        static List<PosixSignalRegistration>? _handlers;

        /// <summary>Registers <paramref name="p"/> until the returned value is disposed (which kills it if it still runs).</summary>
        public static IDisposable Own(Process p)
        {
            lock (Gate)
            {
                if (_handlers is null)
                {
                    // Cancel stays false: after the children are gone the signal's default action ends this process.
                    _handlers = [];
                    foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
                        _handlers.Add(PosixSignalRegistration.Create(signal, _ => KillAll()));
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
                }
                Running.Add(p);
            }
            return new Release(p);
        }

        sealed class Release(Process p) : IDisposable
        {
            public void Dispose()
            {
                Kill(p);
                lock (Gate) Running.Remove(p);
            }
        }

        public static void Kill(Process p)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
            catch (Exception e) when (e is InvalidOperationException or Win32Exception or NotSupportedException) { }
        }

        static void KillAll()
        {
            Process[] all;
            lock (Gate) all = [.. Running];
            foreach (var p in all) Kill(p);
        }
    }
}
