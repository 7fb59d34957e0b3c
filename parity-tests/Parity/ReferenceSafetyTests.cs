using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Parity;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Parity;

/// <summary>
/// What <c>parity</c> hands to PyTorch and how it owns the reference process: the user's CIFAR pickles are read by
/// the tool's restricted reader first (a payload torchvision would run is refused), configs the reference cannot
/// run are refused, the child's output is capped, and the child dies with the tool. Fake <c>--python</c> programs
/// are shell scripts that answer the import check and then do one bad thing.
/// </summary>
[TestFixture, Category("Parity"), System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReferenceSafetyTests
{
    const string MnistConfig = "train-sgd-float64";

    /// <summary>An executable shell script standing in for Python: the import check gets a version, the run does <paramref name="run"/>.</summary>
    static string FakePython(string dir, string run)
    {
        var path = Path.Combine(dir, "fake-python");
        File.WriteAllText(path, $"#!/bin/sh\nif [ \"$1\" = \"-c\" ]; then echo 1.13.1; exit 0; fi\n{run}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>The p2 fixture's CIFAR-10 folder under <paramref name="root"/>, with <c>batches.meta</c> replaced by <paramref name="meta"/>.</summary>
    static void CifarRoot(string root, byte[] meta)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, "cifar-10-batches-py")).FullName;
        foreach (var f in Directory.GetFiles(Repo.Path("parity-tests", "data", "cifar10-fixture", "p2", "cifar-10-batches-py")))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        File.WriteAllBytes(Path.Combine(dir, "batches.meta"), meta);
    }

    /// <summary>
    /// A valid-looking <c>batches.meta</c> (protocol 2, as Python 2 wrote it) whose <c>num_vis</c> is
    /// <c>os.system('touch MARKER')</c>: <c>pickle.load</c> runs the command and gets 0, a plausible int.
    /// </summary>
    static byte[] PayloadMeta(string marker)
    {
        var ms = new MemoryStream();
        void W(string latin1) => ms.Write(Encoding.Latin1.GetBytes(latin1));
        W("\u0080\u0002}(U\u000blabel_names](");
        foreach (var c in new[] { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" })
            W($"U{(char)c.Length}{c}");
        W("eU\u0013num_cases_per_batchK\u0012U\u0007num_vis");
        OsSystemTouch(ms, marker);
        W("u.");
        return ms.ToArray();
    }

    [Test, Category("NeedsPyTorch")]
    public void A_CIFAR_meta_file_that_torchvision_would_run_is_refused_before_the_reference_starts()
    {
        Python.RequireTorch();
        using var tmp = new TempDir();
        var root = tmp.Sub("data");
        var marker = tmp.Sub("PAYLOAD-RAN");
        CifarRoot(root, PayloadMeta(marker));

        // What the reference does with the folder: its LocalCIFAR10 (torchvision's CIFAR10) runs the payload.
        var probe = "import sys; sys.path.insert(0, sys.argv[1]); import resnet_mnist as r; ds = r.LocalCIFAR10(sys.argv[2], train=False); print(len(ds), len(ds.classes))";
        var stdout = Python.Run(probe, Repo.Path("reference"), root);
        Assert.That(stdout.Trim(), Is.EqualTo("18 10"), "torchvision loaded the folder");
        Assert.That(File.Exists(marker), Is.True, "torchvision ran the payload in batches.meta");
        File.Delete(marker);

        var config = tmp.Sub("cifar.yaml");
        File.WriteAllText(config, $"seed: 5\ndata: {{dataset: cifar10, root: '{root}'}}\ntrain: {{epochs: 1, batch_size: 16, dtype: float64}}\n");
        var r = Tool.Run(tmp.Path, ["parity", config, "--steps", "1", "--python", Python.Exe, "--out", tmp.Sub("out")]);
        var meta = Path.Combine(root, "cifar-10-batches-py", "batches.meta");
        Tool.AssertOneErrorLine(r, 2, $"{meta}: refers to global 'os.system'");
        Assert.That(File.Exists(marker), Is.False, "the payload ran");
        Assert.That(r.Stdout, Does.Not.Contain("reference:"), "the reference never started");
    }

    /// <summary>Pickle opcodes for the value <c>os.system("touch 'MARKER'")</c> (protocol 2: GLOBAL, BINUNICODE, TUPLE1, REDUCE).</summary>
    static void OsSystemTouch(MemoryStream ms, string marker)
    {
        var cmd = Encoding.UTF8.GetBytes($"touch '{marker}'");
        ms.Write(Encoding.Latin1.GetBytes("cos\nsystem\nX"));
        ms.Write(BitConverter.GetBytes(cmd.Length));
        ms.Write(cmd);
        ms.Write(Encoding.Latin1.GetBytes("\u0085R"));
    }

    /// <summary>CIFAR-100's <c>meta</c> (protocol 2, as Python 2 wrote it) whose <c>coarse_label_names</c> is <c>os.system('touch MARKER')</c>.</summary>
    static byte[] PayloadMeta100(string marker)
    {
        var ms = new MemoryStream();
        void W(string latin1) => ms.Write(Encoding.Latin1.GetBytes(latin1));
        W("\u0080\u0002}(U\u0010fine_label_names](");
        foreach (var c in DatasetSpecs.Cifar100.ClassNames) W($"U{(char)c.Length}{c}");
        W("eU\u0012coarse_label_names");
        OsSystemTouch(ms, marker);
        W("u.");
        return ms.ToArray();
    }

    /// <summary>
    /// The pre-check is the dataset's own (<see cref="IDatasetFiles.CheckPickles"/>): for CIFAR-100 it reads
    /// <c>train</c>, <c>test</c> and <c>meta</c>, the files torchvision's CIFAR100 unpickles. In process, without
    /// starting the reference (the CIFAR-10 case above covers the command end to end).
    /// </summary>
    [Test, Category("NeedsPyTorch")]
    public void A_CIFAR100_meta_file_that_torchvision_would_run_is_refused_by_the_pre_check()
    {
        Python.RequireTorch();
        using var tmp = new TempDir();
        var root = tmp.Sub("data");
        var marker = tmp.Sub("PAYLOAD-RAN");
        var dir = Directory.CreateDirectory(Path.Combine(root, "cifar-100-python")).FullName;
        foreach (var f in Directory.GetFiles(Repo.Path("parity-tests", "data", "cifar100-fixture", "p2", "cifar-100-python")))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var cfg = ConfigLoader.Parse($"data: {{dataset: cifar100, root: '{root}'}}\n", tmp.Sub("cifar100.yaml"));
        Assert.DoesNotThrow(() => ParityCheck.CheckReferenceInputs(cfg), "the fixture itself passes");
        var meta = Path.Combine(dir, "meta");
        File.WriteAllBytes(meta, PayloadMeta100(marker));

        var probe = "import sys; sys.path.insert(0, sys.argv[1]); import resnet_mnist as r; ds = r.LocalCIFAR100(sys.argv[2], train=False); print(len(ds), len(ds.classes))";
        Assert.That(Python.Run(probe, Repo.Path("reference"), root).Trim(), Is.EqualTo("20 100"), "torchvision loaded the folder");
        Assert.That(File.Exists(marker), Is.True, "torchvision ran the payload in meta");
        File.Delete(marker);

        var e = Assert.Throws<DataException>(() => ParityCheck.CheckReferenceInputs(cfg))!;
        Assert.That(e.Message, Is.EqualTo($"{meta}: refers to global 'os.system'; a CIFAR file holds only numpy arrays, lists and dicts"));
        Assert.That(File.Exists(marker), Is.False, "the payload ran");
    }

    [Test]
    public void Init_from_is_refused_in_one_line()
    {
        using var tmp = new TempDir();
        var pth = SmallPth(tmp.Sub("warm.pth"));
        var r = Tool.Run(tmp.Path, ["parity", Repo.Path("reference", "configs", MnistConfig + ".yaml"), "--set", $"model.init_from={pth}",
            "--python", "/nonexistent/python3", "--out", tmp.Sub("out")]);
        Tool.AssertOneErrorLine(r, 2, "model.init_from: the reference program has no warm start");
    }

    [Test]
    public void A_data_root_with_a_newline_is_refused_not_folded()
    {
        using var tmp = new TempDir();
        var config = tmp.Sub("nl.yaml");
        File.WriteAllText(config, "data: {dataset: mnist, root: \"a\\nb\"}\n");
        var r = Tool.Run(tmp.Path, ["parity", config, "--python", "/nonexistent/python3", "--out", tmp.Sub("out")]);
        Tool.AssertOneErrorLine(r, 2, "data.root: '");
        Assert.That(r.Stderr, Does.Contain("a\\nb").And.Contain("control character"));
    }

    [Test]
    public void A_reference_that_exits_0_and_writes_nothing_is_reported_as_such()
    {
        using var tmp = new TempDir();
        var python = FakePython(tmp.Path, "exit 0");
        var r = Tool.Run(tmp.Path, ["parity", Repo.Path("reference", "configs", MnistConfig + ".yaml"), "--steps", "1",
            "--python", python, "--out", tmp.Sub("out")]);
        Tool.AssertOneErrorLine(r, 1, "the reference program exited 0 but wrote no ");
        Assert.That(r.Stderr, Does.Contain("parity.pt").And.Not.Contain("not found"));
    }

    [Test]
    public void A_reference_that_writes_without_end_is_stopped_and_its_log_stays_small()
    {
        using var tmp = new TempDir();
        var python = FakePython(tmp.Path, "yes 'line without end'");
        var reference = ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), python);
        Assert.That(reference.TorchVersion, Is.EqualTo("1.13.1"));
        var log = tmp.Sub("log.txt");
        var e = Assert.Throws<ReferenceFailedException>(() => reference.Run(["config.yaml"], 1, log))!;
        Assert.That(e.Message, Does.Contain($"wrote more than {ReferenceProgram.MaxOutputBytes >> 20} MiB of output and was stopped").And.Contain(log));
        Assert.That(new FileInfo(log).Length, Is.LessThan(3 * ReferenceProgram.KeptOutputBytes), "only the end is kept");
        Assert.That(File.ReadAllText(log), Does.Contain("earlier bytes not kept").And.EndWith("line without end\n"));
    }

    [Test]
    public void A_reference_failure_line_with_escape_sequences_is_shown_escaped()
    {
        using var tmp = new TempDir();
        var python = FakePython(tmp.Path, "printf 'boom \\033]0;title\\007 \\033[2J\\n' >&2; exit 3");
        var reference = ReferenceProgram.Find(Repo.Path("reference", "resnet_mnist.py"), python);
        var e = Assert.Throws<ReferenceFailedException>(() => reference.Run(["config.yaml"], 1, tmp.Sub("log.txt")))!;
        Assert.That(e.Message, Does.Contain("boom \\x1b]0;title\\x07 \\x1b[2J"));
        Assert.That(e.Message.Any(char.IsControl), Is.False);
    }

    [Test]
    public void SIGTERM_to_parity_ends_the_reference_child_too()
    {
        using var tmp = new TempDir();
        var pidFile = tmp.Sub("child.pid");
        var python = FakePython(tmp.Path, $"echo $$ > '{pidFile}.tmp' && mv '{pidFile}.tmp' '{pidFile}'\nexec sleep 600");
        using var tool = Tool.Start(tmp.Path, ["parity", Repo.Path("reference", "configs", MnistConfig + ".yaml"), "--steps", "1",
            "--python", python, "--out", tmp.Sub("out")]);
        // Wait on progress: the child writes its pid once it runs (the tool prints "reference: ..." just before).
        tool.WaitForLine(l => l.StartsWith("reference:", StringComparison.Ordinal));
        int child = WaitForPid(pidFile, tool);
        Assert.That(IsAlive(child), Is.True, "the fake reference runs");
        tool.Signal("TERM");
        var r = tool.WaitForExit();
        Assert.That(r.ExitCode, Is.EqualTo(143), r.ToString());
        // The tool killed the child before it exited; what may remain for a moment is a zombie awaiting its reaper.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (IsAlive(child) && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.That(IsAlive(child), Is.False, $"the reference child {child} outlived the tool");
    }

    static int WaitForPid(string pidFile, RunningTool tool)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid)) return pid;
            Thread.Sleep(50);
        }
        Assert.Fail($"the fake reference never wrote {pidFile}\n{tool.WaitForExit()}");
        return 0;
    }

    /// <summary>True while <paramref name="pid"/> is a live process (a zombie, state Z, is not).</summary>
    static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is not ("Z" or "X");
        }
        catch (IOException) { return false; }
    }
}
