using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using NUnit.Framework;
using ResnetMnist.Data;

namespace ResnetMnist.ParityTests;

/// <summary>The result of one run of the command-line tool.</summary>
public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs <c>resnet-mnist.dll</c> (copied next to the test assembly by the project reference) as a subprocess, with
/// <c>HOME</c>, <c>XDG_CACHE_HOME</c>, <c>TORCH_HOME</c> and <c>NUGET_PACKAGES</c> set to this test run's own folders
/// (<see cref="TestEnvironment.Clean"/>): what the tool finds or caches never depends on the user's caches. Every wait
/// is on the process itself (its exit, an output line), capped only by <see cref="TestEnvironment.SafetyCap"/>.
/// </summary>
public static class Tool
{
    public static string Dll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "resnet-mnist.dll");
            if (!File.Exists(dll))
                Assert.Fail($"{dll} not found: build the solution (dotnet build Parity.sln); the test project references tool/ResnetMnist.Tool.csproj, which copies it there");
            return dll;
        }
    }

    /// <summary>The build output's apphost (the executable <c>dotnet build</c> makes beside <see cref="Dll"/>, named after the assembly).</summary>
    public static string Apphost
    {
        get
        {
            var exe = Path.Combine(AppContext.BaseDirectory, "resnet-mnist");
            if (!File.Exists(exe))
                Assert.Fail($"{exe} not found: build the solution (dotnet build Parity.sln); the tool project's apphost is copied beside {Dll}");
            return exe;
        }
    }

    static ProcessStartInfo Info(string workDir, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, string? executable = null)
    {
        // Interrupt signals this test run ignores (nohup, a background job) are reset for the tool, which would inherit them.
        string[] command = [.. TestEnvironment.SignalReset.Value ?? [], .. executable is null ? ["dotnet", "exec", Dll] : new[] { executable }, .. args];
        var psi = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in command[1..]) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["COLUMNS"] = "200";
        foreach (var (name, value) in TestEnvironment.Clean) psi.Environment[name] = value;
        // A sweep takes its shard from these when they are set (a test run inside a Slurm array or an Indexed Job).
        foreach (var name in ShardVariables) psi.Environment.Remove(name);
        // The tool chooses its threads' wait and malloc's settings unless the user set them: tests see its own choices.
        foreach (var name in TuningVariables) psi.Environment.Remove(name);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>Runs the tool to its end.</summary>
    /// <param name="env">Variables set for the tool's process (on top of the test run's own, <see cref="TestEnvironment.Clean"/>).</param>
    /// <param name="executable">Run this executable (e.g. <see cref="Apphost"/>) instead of <c>dotnet exec</c> <see cref="Dll"/>.</param>
    public static ToolResult Run(string workDir, IEnumerable<string> args, Dictionary<string, string>? env = null, string? executable = null)
    {
        using var p = new RunningTool(Process.Start(Info(workDir, args, env, executable))!);
        return p.WaitForExit();
    }

    /// <summary>The variables a sweep reads its shard from; removed from every tool process unless a test sets them.</summary>
    public static readonly string[] ShardVariables =
        ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_STEP", "JOB_COMPLETION_INDEX", "RESNET_MNIST_SHARDS"];

    /// <summary>The user's thread-wait and malloc settings, which the tool leaves alone when set; removed from every tool
    /// process unless a test sets them.</summary>
    public static readonly string[] TuningVariables =
        [.. ResnetMnist.Native.NativeLoader.WaitVariables, "GLIBC_TUNABLES", .. ResnetMnist.Native.NativeHeap.MallocVariables];

    public static RunningTool Start(string workDir, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null) =>
        new(Process.Start(Info(workDir, args, env))!);

    /// <summary>Asserts the error contract: exactly one stderr line, <c>error: ...</c>, no stack trace.</summary>
    public static void AssertOneErrorLine(ToolResult r, int expectedCode, string fragment)
    {
        Assert.That(r.ExitCode, Is.EqualTo(expectedCode), r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToList();
        Assert.That(lines, Has.Count.EqualTo(1), $"stderr must be exactly one line\n{r}");
        Assert.That(lines[0], Does.StartWith("error: "), r.ToString());
        Assert.That(lines[0], Does.Contain(fragment), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("   at ").And.Not.Contain("Exception:"), $"no stack trace without --verbose\n{r}");
    }

    public static string Sha(string file) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));

    /// <summary>Every file under <paramref name="dir"/> (relative path → sha256), to show that nothing changed.</summary>
    public static Dictionary<string, string> FileHashes(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != ".lock")
            .ToDictionary(f => Path.GetRelativePath(dir, f), Sha);

    /// <summary>The embedded real-MNIST sample (data/MNIST/raw/*.gz); fails with how to get it when missing.</summary>
    public static string SampleDataRoot
    {
        get
        {
            var root = Repo.Path("data");
            foreach (var name in MnistFiles.All)
                if (!File.Exists(Path.Combine(root, "MNIST", "raw", name + ".gz")))
                    Assert.Fail($"{Path.Combine(root, "MNIST", "raw", name + ".gz")} missing: the repository's embedded MNIST sample is needed (git checkout data/)");
            return root;
        }
    }

    /// <summary>A small, fast training config on the sample (YAML text).</summary>
    public static string SmallConfig(int trainLimit = 64, int testLimit = 64, int epochs = 1, int batch = 32, string extra = "") => $"""
        seed: 0
        threads: 2
        data:
          root: '{SampleDataRoot}'
          train_limit: {trainLimit}
          test_limit: {testLimit}
        train:
          epochs: {epochs}
          batch_size: {batch}
          eval_batch_size: 64
          log_every: 0.001
        optimizer:
          name: adam
          lr: 0.001
        {extra}
        """;

    public static string WriteConfig(string dir, string text, string name = "config.yaml")
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}

/// <summary>A running tool process whose output is collected line by line.</summary>
public sealed class RunningTool(Process process) : IDisposable
{
    readonly BlockingCollection<string> _stdoutLines = [];
    readonly System.Text.StringBuilder _out = new(), _err = new();
    bool _started;

    public int Pid => process.Id;

    void EnsureReading()
    {
        if (_started) return;
        _started = true;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { _stdoutLines.CompleteAdding(); return; }
            lock (_out) _out.AppendLine(e.Data);
            _stdoutLines.Add(e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_err) _err.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
    }

    /// <summary>
    /// Waits for a stdout line matching <paramref name="match"/>; fails with the output so far when the process ends
    /// first (or, if it hangs, at <see cref="TestEnvironment.SafetyCap"/>).
    /// </summary>
    public string WaitForLine(Func<string, bool> match)
    {
        EnsureReading();
        var cap = System.Diagnostics.Stopwatch.StartNew();
        while (cap.Elapsed < TestEnvironment.SafetyCap)
        {
            if (_stdoutLines.TryTake(out var line, 200)) { if (match(line)) return line; continue; }
            if (_stdoutLines.IsCompleted)
                Assert.Fail($"the tool ended without the awaited stdout line\n--- stdout ---\n{_out}\n--- stderr ---\n{_err}");
        }
        process.Kill(entireProcessTree: true);
        TestEnvironment.FailCapped("waiting for a stdout line of the tool", $"--- stdout ---\n{_out}\n--- stderr ---\n{_err}");
        return "";
    }

    /// <summary>
    /// Waits until stderr holds <paramref name="text"/>; fails with the output so far when the process ends first (or,
    /// if it hangs, at <see cref="TestEnvironment.SafetyCap"/>).
    /// </summary>
    public void WaitForStderr(string text)
    {
        EnsureReading();
        bool Seen() { lock (_err) return _err.ToString().Contains(text, StringComparison.Ordinal); }
        var cap = System.Diagnostics.Stopwatch.StartNew();
        while (cap.Elapsed < TestEnvironment.SafetyCap)
        {
            if (Seen()) return;
            if (process.HasExited)
            {
                process.WaitForExit();   // drains the redirected streams
                if (Seen()) return;
                Assert.Fail($"the tool ended without writing '{text}' to stderr\n--- stdout ---\n{_out}\n--- stderr ---\n{_err}");
            }
            Thread.Sleep(10);
        }
        process.Kill(entireProcessTree: true);
        TestEnvironment.FailCapped("waiting for a stderr line of the tool", $"--- stdout ---\n{_out}\n--- stderr ---\n{_err}");
    }

    public void Signal(string signal)
    {
        if (TestEnvironment.SignalReset.Value is null && TestEnvironment.IgnoredInterruptSignals.Value.Contains(signal))
            Assert.Ignore($"this test run ignores SIG{signal} (started under nohup or as a background job), the tool it starts inherits that, " +
                          "and this system's env has no --default-signal to reset it: run the tests in the foreground");
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
        Assert.That(kill.ExitCode, Is.EqualTo(0), $"kill -{signal} {process.Id} failed");
    }

    /// <summary>Waits for the process to end (stopping it at <see cref="TestEnvironment.SafetyCap"/> if it hangs).</summary>
    public ToolResult WaitForExit()
    {
        EnsureReading();
        if (!process.WaitForExit(TestEnvironment.SafetyCap))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            TestEnvironment.FailCapped("the tool", $"--- stdout ---\n{_out}\n--- stderr ---\n{_err}");
        }
        process.WaitForExit(); // drains the redirected streams
        string o, e;
        lock (_out) o = _out.ToString();
        lock (_err) e = _err.ToString();
        return new ToolResult(process.ExitCode, o, e);
    }

    public void Dispose()
    {
        try { if (!process.HasExited) { process.Kill(entireProcessTree: true); process.WaitForExit(); } } catch (InvalidOperationException) { }
        process.Dispose();
    }
}
