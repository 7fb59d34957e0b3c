using System.Diagnostics;
using NUnit.Framework;
using ResnetMnist.Data;
using ResnetMnist.Outputs;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// The one way files are read (links followed to a regular file, FIFOs and devices refused without blocking, sizes
/// capped) and written (exclusive temp file, rename, nothing left on failure), and the folder rules every writing
/// command follows: each case crafts its input the way a user's mistake or a planted link would.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class FileSafetyTests
{
    static void MkFifo(string path)
    {
        using var mk = Process.Start("mkfifo", path)!;
        mk.WaitForExit();
        Assert.That(mk.ExitCode, Is.EqualTo(0), $"mkfifo {path}");
    }

    static string Victim(string dir, string name = "victim.txt")
    {
        var victim = Path.Combine(dir, name);
        File.WriteAllText(victim, "not the tool's");
        return victim;
    }

    static void Replace(string path, Action<string> with)
    {
        if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
        with(path);
    }

    // ---- reading -------------------------------------------------------------------------------------------------

    [Test]
    public void A_dataset_of_symbolic_links_to_the_real_files_is_read_as_the_files_themselves()
    {
        var dir = TempDir.New("linked-data");
        var raw = Path.Combine(Tool.SampleDataRoot, "MNIST", "raw");
        foreach (var name in new[] { "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" })
            File.CreateSymbolicLink(Path.Combine(dir, name), Path.Combine(raw, name));
        var viaLink = Idx.ReadImages(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"));
        var direct = Idx.ReadImages(Path.Combine(raw, "t10k-images-idx3-ubyte.gz"));
        Assert.That(viaLink.Count, Is.EqualTo(direct.Count).And.GreaterThan(0));
        Assert.That(Idx.ReadLabels(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz")), Is.EqualTo(Idx.ReadLabels(Path.Combine(raw, "t10k-labels-idx1-ubyte.gz"))));
    }

    [Test]
    public void Links_to_a_device_a_fifo_a_folder_or_nothing_are_refused_naming_link_and_target()
    {
        var dir = TempDir.New("bad-links");
        var fifo = Path.Combine(dir, "pipe");
        MkFifo(fifo);
        string Refusal(string target, string name)
        {
            var link = Path.Combine(dir, name);
            File.CreateSymbolicLink(link, target);
            var e = Assert.Throws<DataException>(() => InputFiles.ReadAllBytes(link, "a test file", 1 << 20, m => new DataException($"{link}: {m}")))!;
            Assert.That(e.Message, Does.StartWith(link + ": is a symbolic link to "));
            return e.Message;
        }
        Assert.That(Refusal("/dev/zero", "zero"), Does.Contain("to /dev/zero, which is not a regular file but a character device; expected a test file"));
        Assert.That(Refusal(fifo, "fifo"), Does.Contain($"to {fifo}, which is not a regular file but a FIFO (named pipe)"));
        Assert.That(Refusal(dir, "folder"), Does.Contain($"to {dir}, which is a directory"));
        Assert.That(Refusal(Path.Combine(dir, "nowhere"), "dangling"), Does.Contain("which does not exist"));
        // A FIFO named directly is refused before it is opened: nothing waits for a writer.
        Assert.That(Assert.Throws<DataException>(() => InputFiles.OpenRead(fifo, "a test file", 1 << 20, m => new DataException(m)))!.Message,
            Does.Contain("is not a regular file but a FIFO"));
    }

    [Test]
    public void A_read_stops_at_the_cap_even_when_the_size_check_passed()
    {
        var dir = TempDir.New("cap");
        var file = Path.Combine(dir, "f.bin");
        File.WriteAllBytes(file, new byte[1000]);
        using var s = InputFiles.OpenRead(file, "a test file", 1000, m => new DataException(m));
        File.AppendAllText(file, new string('x', 5000)); // the file grows after it was checked and opened
        var e = Assert.Throws<DataException>(() => s.CopyTo(Stream.Null))!;
        Assert.That(e.Message, Does.Contain("grew past the 1000 bytes allowed for a test file while being read"));
    }

    static string ResumableCopy(string name) => TrainedRun.CopyTo(Path.Combine(TempDir.New(name), "run"));

    static ToolResult Resume(string run) =>
        Tool.Run(Path.GetDirectoryName(run)!, ["train", "--resume", run, "--set", "train.epochs=2", "--force"]);

    [TestCase("steps.csv", "a steps.csv of this tool")]
    public void Resume_refuses_a_record_file_that_links_to_dev_zero(string name, string what)
    {
        var run = ResumableCopy("resume-zero");
        Replace(Path.Combine(run, name), p => File.CreateSymbolicLink(p, "/dev/zero"));
        Tool.AssertOneErrorLine(Resume(run), 2,
            $"{Path.Combine(run, name)}: is a symbolic link to /dev/zero, which is not a regular file but a character device; expected {what}");
    }

    [Test]
    public void Resume_refuses_a_fifo_as_steps_csv_or_as_the_lock_without_hanging()
    {
        var run = ResumableCopy("resume-fifo");
        Replace(Path.Combine(run, "steps.csv"), MkFifo);
        Tool.AssertOneErrorLine(Resume(run), 2, "steps.csv: is not a regular file but a FIFO (named pipe); expected a steps.csv of this tool");

        var run2 = ResumableCopy("lock-fifo");
        Replace(Path.Combine(run2, ".lock"), MkFifo);
        var before = Tool.FileHashes(run2);
        Tool.AssertOneErrorLine(Resume(run2), 2, ".lock: is a FIFO (named pipe), not a regular file; the run's lock must be a file the tool made");
        Assert.That(Tool.FileHashes(run2), Is.EqualTo(before));
    }

    /// <summary>
    /// A resume takes the epochs' history from its checkpoint (last.json), never from metrics.csv: garbage there, or a
    /// link to a device, is not read but replaced by the atomic writer (the link itself, not its target), and the
    /// rewritten file holds the checkpoint's epoch and the resumed one.
    /// </summary>
    [TestCase("garbage")]
    [TestCase("link to /dev/zero")]
    public void A_damaged_metrics_csv_is_not_read_on_resume_but_rewritten_from_the_checkpoint(string damage)
    {
        var run = ResumableCopy("resume-metrics");
        var metrics = Path.Combine(run, "metrics.csv");
        var first = RunDirectory.ReadMetrics(metrics)[0];
        if (damage == "garbage") File.WriteAllText(metrics, "epoch,train_loss\nhello,world\n");
        else Replace(metrics, p => File.CreateSymbolicLink(p, "/dev/zero"));
        var r = Resume(run);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(new FileInfo(metrics).LinkTarget, Is.Null, "the link is replaced, not written through");
        var rows = RunDirectory.ReadMetrics(metrics);
        Assert.That(rows.Select(e => e.Epoch), Is.EqualTo(new[] { 1, 2 }));
        Assert.That((rows[0].TrainLoss, rows[0].TestLoss, rows[0].TestAccuracy), Is.EqualTo((first.TrainLoss, first.TestLoss, first.TestAccuracy)),
            "epoch 1 comes from the checkpoint's history");
    }

    [Test]
    public void Stale_temp_files_of_a_killed_write_are_removed_when_the_run_is_resumed()
    {
        var run = ResumableCopy("stale-temp");
        var stale = Path.Combine(run, "checkpoints", $".last.pt.4242.{Guid.NewGuid():N}.tmp");
        var staleTop = Path.Combine(run, $".summary.json.4242.{Guid.NewGuid():N}.tmp");
        var notOurs = Path.Combine(run, "checkpoints", ".notes.tmp");
        File.WriteAllText(stale, "left by kill -9 during a checkpoint write");
        File.WriteAllText(staleTop, "left by kill -9");
        File.WriteAllText(notOurs, "someone's");
        using (RunDirectory.Open(run, resume: true, force: false)) { }
        Assert.That(File.Exists(stale), Is.False, "the checkpoint's stale temp file should be gone");
        Assert.That(File.Exists(staleTop), Is.False);
        Assert.That(File.ReadAllText(notOurs), Is.EqualTo("someone's"), "only the tool's own temp-name pattern is removed");
    }

    [Test]
    public void A_sweep_rerun_refuses_a_run_summary_that_links_to_dev_zero()
    {
        var dir = TempDir.New("sweep-zero");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var sweep = Path.Combine(dir, "sweep");
        var runFolder = Path.Combine(sweep, "optimizer.lr=0.001");
        Directory.CreateDirectory(runFolder);
        File.WriteAllText(Path.Combine(sweep, OutputFolder.SweepMarker), "a sweep folder of resnet-mnist\n");
        File.CreateSymbolicLink(Path.Combine(runFolder, "summary.json"), "/dev/zero");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "optimizer.lr=0.001", "--out", sweep]), 2,
            "summary.json: is a symbolic link to /dev/zero, which is not a regular file but a character device");
    }

    // ---- writing -------------------------------------------------------------------------------------------------

    [Test]
    public void A_failed_write_leaves_the_previous_file_and_no_temp_file()
    {
        var dir = TempDir.New("atomic-fail");
        var target = Path.Combine(dir, "model.onnx");
        File.WriteAllText(target, "previous");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(target, s =>
        {
            s.Write(new byte[100_000]);
            throw new IOException("No space left on device");
        }))!;
        Assert.That(e.Message, Does.Contain("could not write (No space left on device)"));
        Assert.That(File.ReadAllText(target), Is.EqualTo("previous"));
        Assert.That(Directory.GetFileSystemEntries(dir).Select(Path.GetFileName), Is.EqualTo(new[] { "model.onnx" }));
    }

    [Test]
    public void Export_never_writes_through_a_link_at_the_temp_name_or_the_target()
    {
        var dir = TempDir.New("export-link");
        var victim = Victim(dir);
        var d = Directory.CreateDirectory(Path.Combine(dir, "D")).FullName;
        File.CreateSymbolicLink(Path.Combine(d, "model.onnx.tmp"), victim);
        var r = Tool.Run(dir, ["export", TrainedRun.Dir, "--out", Path.Combine(d, "model.onnx")]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(File.ReadAllText(victim), Is.EqualTo("not the tool's"));
        Assert.That(new FileInfo(Path.Combine(d, "model.onnx")).LinkTarget, Is.Null);
        Assert.That(new FileInfo(Path.Combine(d, "model.onnx")).Length, Is.GreaterThan(1_000_000));

        // A link at the target itself is replaced by the new file; its target is left alone.
        Replace(Path.Combine(d, "model.onnx"), p => File.CreateSymbolicLink(p, victim));
        r = Tool.Run(dir, ["export", TrainedRun.Dir, "--out", Path.Combine(d, "model.onnx")]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(File.ReadAllText(victim), Is.EqualTo("not the tool's"));
        Assert.That(new FileInfo(Path.Combine(d, "model.onnx")).LinkTarget, Is.Null);
    }

    /// <summary>
    /// Runs the tool in its own user and mount namespace (<c>unshare -rm</c>) after <paramref name="mount"/>, so that a
    /// small full disk or a read-only folder can be made without privileges; the mount ends with the process.
    /// Ignored (with the reason) where the system allows no such namespace.
    /// </summary>
    static ToolResult RunWithMount(string workDir, string mount, IEnumerable<string> args, string after = "true")
    {
        using (var probe = Process.Start(new ProcessStartInfo("unshare", ["-rm", "sh", "-c", mount]) { RedirectStandardError = true, UseShellExecute = false })!)
        {
            var err = probe.StandardError.ReadToEnd();
            probe.WaitForExit();
            if (probe.ExitCode != 0) Assert.Ignore($"needs a private mount namespace (unshare -rm sh -c '{mount}'): {err.Trim()}");
        }
        var psi = new ProcessStartInfo("unshare") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "-rm", "sh", "-c", mount + " && { dotnet exec \"$0\" \"$@\"; rc=$?; " + after + "; exit $rc; }", Tool.Dll }.Concat(args)) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["COLUMNS"] = "200";
        foreach (var (name, value) in TestEnvironment.Clean) psi.Environment[name] = value;
        using var running = new RunningTool(Process.Start(psi)!);
        return running.WaitForExit();
    }

    [Test]
    public void Export_onto_a_full_disk_leaves_no_partial_file_and_no_temp_file()
    {
        var dir = TempDir.New("export-full");
        var full = Directory.CreateDirectory(Path.Combine(dir, "full")).FullName;
        var r = RunWithMount(dir, $"mount -t tmpfs -o size=1M tmpfs '{full}'", ["export", TrainedRun.Dir, "--out", Path.Combine(full, "model.onnx")],
            after: $"echo \"left on the full disk: [$(ls -A '{full}')]\"");
        Tool.AssertOneErrorLine(r, 1, "model.onnx: could not write (No space left on device");
        Assert.That(r.Stderr, Does.Contain("the previous file, if any, is unchanged"));
        // Listed inside the namespace, while the small file system is still mounted: no model.onnx, no temp file.
        Assert.That(r.Stdout, Does.Contain("left on the full disk: []"), r.ToString());
    }

    [Test]
    public void A_read_only_run_folder_is_reported_as_read_only_not_as_locked()
    {
        var run = ResumableCopy("read-only");
        var r = RunWithMount(Path.GetDirectoryName(run)!, $"mount --bind '{run}' '{run}' && mount -o remount,bind,ro '{run}'",
            ["train", "--resume", run, "--set", "train.epochs=2", "--force"]);
        Tool.AssertOneErrorLine(r, 2, $"{run}: the run folder is read-only here (Read-only file system");
        Assert.That(r.Stderr, Does.Not.Contain("another run"));
    }

    [Test]
    public void Init_never_writes_through_a_link_or_into_a_system_folder()
    {
        var dir = TempDir.New("init");
        var victim = Victim(dir);
        var target = Directory.CreateDirectory(Path.Combine(dir, "proj")).FullName;
        File.CreateSymbolicLink(Path.Combine(target, "config.yaml"), victim);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["init", target]), 2, "config.yaml: already exists; nothing was changed");
        Assert.That(File.ReadAllText(victim), Is.EqualTo("not the tool's"));
        Tool.AssertOneErrorLine(Tool.Run(dir, ["init", "/etc/resnet-mnist-probe"]), 2, "/etc/resnet-mnist-probe: is a system folder");
        Assert.That(Directory.Exists("/etc/resnet-mnist-probe"), Is.False);
        var r = Tool.Run(dir, ["init", Path.Combine(dir, "fresh")]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(File.ReadAllText(Path.Combine(dir, "fresh", "config.yaml")), Does.Contain("data:"));
    }

    // ---- folder rules --------------------------------------------------------------------------------------------

    [Test]
    public void Sweep_out_refuses_a_foreign_folder_and_a_grid_of_a_million_runs()
    {
        var dir = TempDir.New("sweep-rules");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        var foreign = Directory.CreateDirectory(Path.Combine(dir, "results")).FullName;
        File.WriteAllText(Path.Combine(foreign, "sweep.csv"), "the user's own table\n");
        File.WriteAllText(Path.Combine(foreign, "sweep.md"), "the user's notes\n");
        var before = Tool.FileHashes(foreign);
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "optimizer.lr=0.001", "--out", foreign]), 2,
            $"{foreign}: is not empty and is not a sweep folder of this tool (no {OutputFolder.SweepMarker})");
        Assert.That(Tool.FileHashes(foreign), Is.EqualTo(before));

        string Values(int n) => string.Join(",", Enumerable.Range(1, n));
        Tool.AssertOneErrorLine(Tool.Run(dir, ["sweep", cfg, "--grid", "seed=" + Values(100), "--grid", "train.epochs=" + Values(100),
            "--grid", "train.batch_size=" + Values(100), "--out", Path.Combine(dir, "big")]), 2,
            "--grid: 100 × 100 × 100 combinations is more than 10,000 runs; allowed: at most 10,000 runs per sweep");
        Assert.That(Directory.Exists(Path.Combine(dir, "big")), Is.False);
    }

    [Test]
    public void Export_out_in_a_system_folder_is_refused()
    {
        var dir = TempDir.New("export-etc");
        Tool.AssertOneErrorLine(Tool.Run(dir, ["export", TrainedRun.Dir, "--out", "/etc/resnet-mnist-probe.onnx"]), 2, "/etc: is a system folder");
        Assert.That(File.Exists("/etc/resnet-mnist-probe.onnx"), Is.False);
    }

    [Test]
    public void A_tensorboard_folder_that_is_a_link_or_a_file_is_refused_before_anything_changes()
    {
        var run = ResumableCopy("tb-link");
        var outside = Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(run)!, "outside")).FullName;
        File.CreateSymbolicLink(Path.Combine(run, RunDirectory.TensorBoardFolder), outside);
        var before = Tool.FileHashes(run);
        var cfg = Tool.WriteConfig(Path.GetDirectoryName(run)!, Tool.SmallConfig());
        Tool.AssertOneErrorLine(Tool.Run(Path.GetDirectoryName(run)!, ["train", cfg, "--out", run, "--force", "--set", "train.tensorboard=true"]), 2,
            $"{Path.Combine(run, RunDirectory.TensorBoardFolder)}: is a symbolic link (to {outside})");
        Assert.That(Directory.GetFileSystemEntries(outside), Is.Empty, "no event file outside the run");
        Assert.That(Tool.FileHashes(run), Is.EqualTo(before), "the refused run changed nothing");

        var run2 = ResumableCopy("tb-file");
        File.WriteAllText(Path.Combine(run2, RunDirectory.TensorBoardFolder), "a file in the folder's place");
        Tool.AssertOneErrorLine(Tool.Run(Path.GetDirectoryName(run2)!, ["train", cfg, "--out", run2, "--force", "--set", "train.tensorboard=true"]), 2,
            $"{Path.Combine(run2, RunDirectory.TensorBoardFolder)}: is a file, expected a folder of the tool's output");
        Assert.That(File.ReadAllText(Path.Combine(run2, RunDirectory.TensorBoardFolder)), Is.EqualTo("a file in the folder's place"));
    }

    [Test]
    public void Parity_out_follows_the_folder_rules_and_never_writes_through_planted_links()
    {
        Python.RequireTorch();
        var dir = TempDir.New("parity-links");
        var cfg = Tool.WriteConfig(dir, Tool.SmallConfig());
        string[] Parity(string outDir) => ["parity", cfg, "--steps", "1", "--python", Python.Exe, "--out", outDir];

        Tool.AssertOneErrorLine(Tool.Run(dir, Parity("/etc/resnet-mnist-probe")), 2, "/etc/resnet-mnist-probe: is a system or home folder");
        Assert.That(Directory.Exists("/etc/resnet-mnist-probe"), Is.False);
        var file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "mine");
        Tool.AssertOneErrorLine(Tool.Run(dir, Parity(file)), 2, $"{file}: is a file, expected a parity report folder");

        // A folder the tool did not make, holding planted links: refused, nothing written through them.
        var victims = Enumerable.Range(1, 4).Select(i => Victim(dir, $"victim{i}.txt")).ToArray();
        var foreign = Directory.CreateDirectory(Path.Combine(dir, "foreign", "reference")).Parent!.FullName;
        File.CreateSymbolicLink(Path.Combine(foreign, "reference", "log.txt"), victims[0]);
        File.CreateSymbolicLink(Path.Combine(foreign, "reference", "config.yaml"), victims[1]);
        Tool.AssertOneErrorLine(Tool.Run(dir, Parity(foreign)), 2, $"{foreign}: is not empty and is not a parity report folder of this tool");

        // The tool's own parity folder with links planted where it (and the reference program) write: links replaced or removed.
        var own = Path.Combine(dir, "own");
        Directory.CreateDirectory(Path.Combine(own, "reference", "dump"));
        File.WriteAllText(Path.Combine(own, OutputFolder.ParityMarker), "a parity report folder of resnet-mnist\n");
        File.CreateSymbolicLink(Path.Combine(own, "reference", "log.txt"), victims[0]);
        File.CreateSymbolicLink(Path.Combine(own, "reference", "config.yaml"), victims[1]);
        File.CreateSymbolicLink(Path.Combine(own, "reference", "dump", "parity.pt"), victims[2]);
        File.CreateSymbolicLink(Path.Combine(own, "parity.json"), victims[3]);
        var r = Tool.Run(dir, Parity(own));
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        foreach (var v in victims) Assert.That(File.ReadAllText(v), Is.EqualTo("not the tool's"), v);
        foreach (var f in new[] { "reference/log.txt", "reference/config.yaml", "reference/dump/parity.pt", "parity.json" })
            Assert.That(new FileInfo(Path.Combine(own, f)).LinkTarget, Is.Null, f);
    }

    [Test]
    public void Weights_import_mlnet_out_replaces_a_link_instead_of_writing_through_it()
    {
        var dir = TempDir.New("mlnet-out");
        var victim = Victim(dir);
        var victim2 = Victim(dir, "victim2.txt");
        var outDir = Directory.CreateDirectory(Path.Combine(dir, "out")).FullName;
        File.CreateSymbolicLink(Path.Combine(outDir, "r18.pth"), victim);
        File.CreateSymbolicLink(Path.Combine(outDir, "r18.safetensors"), victim2);
        var env = new Dictionary<string, string>
        {
            ["XDG_CACHE_HOME"] = Path.Combine(dir, "cache"),
            ["NUGET_PACKAGES"] = Path.GetFullPath(Path.Combine(ResnetMnist.Weights.MlnetImporter.FindPackageDir(), "..", "..")),
        };
        var r = Tool.Run(dir, ["weights", "import-mlnet", "--out", Path.Combine(outDir, "r18.pth")], env: env);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.Stdout, Does.StartWith("converted "), "the package was in the cache: converted, not fetched\n" + r);
        var again = Tool.Run(dir, ["weights", "import-mlnet"], env: env);
        Assert.That(again.Stdout, Does.StartWith("reused the earlier conversion"), again.ToString());
        Assert.That(File.ReadAllText(victim), Is.EqualTo("not the tool's"));
        Assert.That(File.ReadAllText(victim2), Is.EqualTo("not the tool's"));
        Assert.That(new FileInfo(Path.Combine(outDir, "r18.pth")).LinkTarget, Is.Null);
        Assert.That(Tool.Sha(Path.Combine(outDir, "r18.pth")), Is.EqualTo(Tool.Sha(Path.Combine(dir, "cache", "resnet-mnist", "weights", "resnet18-mlnet.pth"))));
    }
}
