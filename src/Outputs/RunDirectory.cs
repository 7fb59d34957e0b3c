using System.Globalization;
using System.Text.Json;

namespace ResnetMnist.Outputs;

/// <summary>
/// A run's folder and its files: <c>config.yaml</c>, <c>steps.csv</c>, <c>metrics.csv</c>, <c>summary.json</c>,
/// <c>loss_curve.png</c> and <c>checkpoints/</c>. Every file is replaced atomically. Holds a lock (<c>.lock</c>) so
/// that two runs cannot write the same folder.
/// </summary>
public sealed class RunDirectory : IDisposable
{
    public string Path { get; }
    public string Checkpoints => System.IO.Path.Combine(Path, "checkpoints");
    public string ConfigFile => File("config.yaml");
    public string StepsFile => File("steps.csv");
    public string MetricsFile => File("metrics.csv");
    public string SummaryFile => File("summary.json");
    public string PlotFile => File("loss_curve.png");

    readonly FileStream _lock;

    /// <summary>Set when <see cref="Open"/> took over a <c>.lock</c> left by a process that no longer runs: what it found.</summary>
    public string? StaleLockNote { get; private set; }

    /// <summary>Set when <see cref="Open"/> replaced the files of a run that stopped before its first checkpoint.</summary>
    public bool RestartedWithoutCheckpoint { get; private set; }

    /// <summary>Marks a folder as created by this tool: <c>--force</c> and re-runs touch only folders that carry it.</summary>
    public const string MarkerName = ".resnet-mnist-run";
    /// <summary>The folder under a run that holds TensorBoard's event files (<c>train.tensorboard</c>).</summary>
    public const string TensorBoardFolder = "tensorboard";
    /// <summary>The prefix of every TensorBoard event file name; <c>--force</c> deletes only these.</summary>
    public const string TensorBoardPrefix = "events.out.tfevents.";

    /// <summary>The files this tool writes in a run folder (<see cref="CheckpointFileNames"/> in <c>checkpoints/</c>): the only ones it ever deletes.</summary>
    public static readonly string[] RunFileNames = ["config.yaml", "steps.csv", "metrics.csv", "summary.json", "loss_curve.png", "eval.json"];
    public static readonly string[] CheckpointFileNames = ["last.pt", "last.optim.pt", "last.json", "best.pt", "best.json"];

    /// <summary>What the marker file says.</summary>
    static string MarkerText =>
        $"run folder of resnet-mnist: --force and re-runs delete only {string.Join(", ", RunFileNames)}, checkpoints/{{{string.Join(", ", CheckpointFileNames)}}}, " +
        $"{TensorBoardFolder}/{TensorBoardPrefix}* and their temp files\n";

    RunDirectory(string path, FileStream lockFile) { Path = path; _lock = lockFile; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>What a folder holds, as far as opening it as a run folder is concerned.</summary>
    enum Contents { Absent, Empty, Foreign, RunWithoutCheckpoint, RunWithCheckpoint }

    /// <summary>
    /// Checks, without creating or changing anything, that <paramref name="path"/> can be opened as
    /// <see cref="Open"/> would: call it before any slow work so that a refusal comes first.
    /// </summary>
    public static void Check(string path, bool resume, bool force)
    {
        path = System.IO.Path.GetFullPath(path);
        CheckState(path, resume, force);
        var lockPath = System.IO.Path.Combine(path, ".lock");
        if (!System.IO.File.Exists(lockPath)) return;
        for (int attempt = 1; ; attempt++)
        {
            var pid = Probe(lockPath);
            if (pid is null) return;
            if (pid != 0 || attempt == LockTries) throw Locked(path, pid == 0 ? null : pid);
            Thread.Sleep(LockRetryMilliseconds);
        }
    }

    /// <summary>
    /// The process training in <paramref name="path"/> now (0 when its id cannot be told: another machine's, or one
    /// whose lock record is being written), or null when no live process holds the folder's <c>.lock</c>.
    /// </summary>
    public static int? LockHolder(string path)
    {
        var lockPath = System.IO.Path.Combine(System.IO.Path.GetFullPath(path), ".lock");
        return System.IO.File.Exists(lockPath) && new FileInfo(lockPath).LinkTarget is null ? Probe(lockPath) : null;
    }

    /// <summary>The process holding <paramref name="lockPath"/> (0 when it cannot be told), or null when it is free.</summary>
    static int? Probe(string lockPath)
    {
        using var probe = RunLock.TryOpen(lockPath, create: false);
        if (probe is null) return System.IO.File.Exists(lockPath) ? 0 : null;
        return RunLock.Holder(probe) is { Alive: true } holder ? holder.Pid : null;
    }

    /// <summary>Whether <c>--resume</c> of <paramref name="path"/> has a checkpoint to continue from (otherwise it starts over).</summary>
    public static bool HasCheckpoint(string path) =>
        System.IO.File.Exists(System.IO.Path.Combine(System.IO.Path.GetFullPath(path), "checkpoints", "last.json"));

    /// <summary>Whether <paramref name="path"/> is a run folder of this tool (with or without a checkpoint): <c>--resume</c> accepts it.</summary>
    public static bool IsRunFolder(string path) =>
        ContentsOf(System.IO.Path.GetFullPath(path)) is Contents.RunWithCheckpoint or Contents.RunWithoutCheckpoint;

    static Contents CheckState(string path, bool resume, bool force)
    {
        OutputFolder.RefuseSystemFolder(path);
        if (System.IO.File.Exists(path)) throw new RunDirectoryException($"{path}: is a file, expected a run folder");
        var checkpoints = System.IO.Path.Combine(path, "checkpoints");
        if (new FileInfo(checkpoints).LinkTarget is string target)
            throw new RunDirectoryException($"{checkpoints}: is a symbolic link (to {target}); the tool writes only inside the run folder: remove the link or pick another --out");
        if (System.IO.File.Exists(checkpoints))
            throw new RunDirectoryException($"{checkpoints}: is a file, expected the run's checkpoint folder");
        OutputFolder.CheckSubfolder(System.IO.Path.Combine(path, TensorBoardFolder));
        var lockPath = System.IO.Path.Combine(path, ".lock");
        if (new FileInfo(lockPath).LinkTarget is string lockTarget) // opening it would truncate the link's target
            throw new RunDirectoryException($"{lockPath}: is a symbolic link (to {lockTarget}); the tool writes only inside the run folder: remove the link");
        var contents = ContentsOf(path);
        if (resume && contents is not (Contents.RunWithCheckpoint or Contents.RunWithoutCheckpoint))
            throw new RunDirectoryException($"{path}: no run to resume here (not a run folder of this tool: no {MarkerName} or checkpoints/last.json)");
        if (!resume && contents == Contents.Foreign)
            throw new RunDirectoryException($"{path}: is not empty and is not a run folder of this tool (no {MarkerName}); nothing in it is changed, even with --force: pick a new or empty --out");
        if (!resume && contents == Contents.RunWithCheckpoint && !force)
            throw new RunDirectoryException($"{path}: already holds a run; resume it with --resume {path}, pick another --out, or pass --force to overwrite");
        return contents;
    }

    static Contents ContentsOf(string path)
    {
        if (!Directory.Exists(path)) return Contents.Absent;
        if (System.IO.File.Exists(System.IO.Path.Combine(path, "checkpoints", "last.json"))) return Contents.RunWithCheckpoint;
        // train.save: best keeps only best.pt: such a run is not replaced without --force either.
        if (System.IO.File.Exists(System.IO.Path.Combine(path, "checkpoints", "best.pt")) && System.IO.File.Exists(System.IO.Path.Combine(path, MarkerName)))
            return Contents.RunWithCheckpoint;
        if (System.IO.File.Exists(System.IO.Path.Combine(path, MarkerName))) return Contents.RunWithoutCheckpoint;
        return Directory.EnumerateFileSystemEntries(path).Any() ? Contents.Foreign : Contents.Empty;
    }

    static RunFolderLockedException Locked(string path, int? pid) =>
        new(path, pid, $"{path}: another run is writing to this folder ({(pid is int p ? $"process {p}, " : "")}locked: {System.IO.Path.Combine(path, ".lock")}); wait for it to finish or pick another --out");

    /// <summary>
    /// Tries of <see cref="Check"/> and <see cref="Open"/> on a held lock, <see cref="LockRetryMilliseconds"/> apart,
    /// before they call the folder locked: a look at the lock by another process (<see cref="LockHolder"/>, a
    /// <see cref="Check"/>) holds it for microseconds, a run for its whole length.
    /// </summary>
    const int LockTries = 5, LockRetryMilliseconds = 20;

    /// <summary>Takes the run's lock (<see cref="LockTries"/> tries); null when another process keeps it.</summary>
    static FileStream? TakeLock(string lockPath)
    {
        for (int attempt = 1; ; attempt++)
        {
            if (RunLock.TryOpen(lockPath, create: true) is FileStream held) return held;
            if (attempt == LockTries) return null;
            Thread.Sleep(LockRetryMilliseconds);
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for a new run (it must be new, empty, or a run of this tool that never reached a
    /// checkpoint, unless <paramref name="force"/>) or for a resume (<paramref name="resume"/>: it must hold a run).
    /// Throws <see cref="RunDirectoryException"/> otherwise. A <c>.lock</c> left by a process that no longer runs is
    /// taken over (<see cref="StaleLockNote"/>).
    /// </summary>
    public static RunDirectory Open(string path, bool resume, bool force)
    {
        path = System.IO.Path.GetFullPath(path);
        var contents = CheckState(path, resume, force);
        try
        {
            Directory.CreateDirectory(System.IO.Path.Combine(path, "checkpoints"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunDirectoryException($"{path}: cannot create the run folder ({e.Message})");
        }
        string? stale = null;
        var lockFile = TakeLock(System.IO.Path.Combine(path, ".lock")) ?? throw Locked(path, null);
        try
        {
            var holder = RunLock.Holder(lockFile);
            if (holder is { Alive: true }) throw Locked(path, holder.Pid);
            if (holder is not null) stale = $"taking over the lock of process {holder.Pid}, which no longer runs ({System.IO.Path.Combine(path, ".lock")})";
            RunLock.Write(lockFile);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
        var dir = new RunDirectory(path, lockFile) { StaleLockNote = stale };
        // Temp files of a write cut short (kill -9, power cut): with the lock held, no writer of this folder is left.
        AtomicFile.RemoveStaleTemps(path);
        AtomicFile.RemoveStaleTemps(dir.Checkpoints);
        if (!resume && contents is Contents.RunWithCheckpoint or Contents.RunWithoutCheckpoint)
        {
            dir.Clear();
            dir.RestartedWithoutCheckpoint = contents == Contents.RunWithoutCheckpoint;
        }
        AtomicFile.WriteAllText(dir.File(MarkerName), MarkerText);
        return dir;
    }

    /// <summary>
    /// Deletes the files this tool wrote, by name (and temp files of theirs left by a crash), and nothing else: a
    /// symbolic link in a file's place is removed itself, never followed; other files and folders stay.
    /// </summary>
    void Clear()
    {
        DeleteOwn(Path, RunFileNames);
        DeleteOwn(Checkpoints, CheckpointFileNames);
        // TensorBoard's event files (train.tensorboard), by their prefix; the folder goes when nothing else is in it.
        var board = File(TensorBoardFolder);
        if (Directory.Exists(board) && new DirectoryInfo(board).LinkTarget is null)
        {
            foreach (var f in Directory.EnumerateFiles(board, TensorBoardPrefix + "*"))
                System.IO.File.Delete(f);
            if (!Directory.EnumerateFileSystemEntries(board).Any()) Directory.Delete(board);
        }
    }

    static void DeleteOwn(string folder, string[] names)
    {
        foreach (var name in names)
        {
            var f = System.IO.Path.Combine(folder, name);
            if (System.IO.File.Exists(f) || new FileInfo(f).LinkTarget is not null) System.IO.File.Delete(f); // unlink: a link is removed, not its target
            foreach (var tmp in Directory.EnumerateFiles(folder, $".{name}.*.tmp"))
                System.IO.File.Delete(tmp);
        }
    }

    /// <summary>Writes the run's resolved config (<c>config.yaml</c>, YAML text as the config schema prints it).</summary>
    public void WriteConfig(string yaml) => AtomicFile.WriteAllText(ConfigFile, yaml);

    /// <summary>Rewrites <c>steps.csv</c> with every step so far (atomic; a few hundred KB at most).</summary>
    public void WriteSteps(IReadOnlyList<StepRecord> steps)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        w.WriteLine("step,epoch,loss,lr");
        foreach (var s in steps) w.WriteLine($"{s.Step},{s.Epoch},{R(s.Loss)},{R(s.Lr)}");
        AtomicFile.WriteAllText(StepsFile, w.ToString());
    }

    /// <summary>
    /// Starts <c>steps.csv</c> over with <paramref name="kept"/> (atomic: the header and the steps a resume keeps), then
    /// returns a writer that appends each further step, so that the file is live during an epoch.
    /// </summary>
    public StepsLog OpenStepsLog(IReadOnlyList<StepRecord> kept)
    {
        WriteSteps(kept);
        return new StepsLog(StepsFile);
    }

    /// <summary>Appends steps to <c>steps.csv</c>; <see cref="Flush"/> makes them visible to readers.</summary>
    public sealed class StepsLog : IDisposable
    {
        readonly StreamWriter _w;

        internal StepsLog(string file)
        {
            _w = new StreamWriter(AtomicFile.OpenAppend(file), new System.Text.UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        }

        public void Append(StepRecord s) => _w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s.Step},{s.Epoch},{R(s.Loss)},{R(s.Lr)}"));

        public void Flush() => _w.Flush();

        public void Dispose() => _w.Dispose();
    }

    public void WriteMetrics(IReadOnlyList<EpochRecord> epochs)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        // With a validation split (data.val_split) two columns follow; without one the file is as it always was.
        bool val = epochs.Any(e => e.ValAccuracy is not null);
        w.WriteLine("epoch,train_loss,test_loss,test_accuracy,lr,epoch_seconds,train_images_per_second" + (val ? ",val_loss,val_accuracy" : ""));
        foreach (var e in epochs)
            w.WriteLine($"{e.Epoch},{R(e.TrainLoss)},{R(e.TestLoss)},{R(e.TestAccuracy)},{R(e.Lr)},{e.EpochSeconds.ToString("F3", CultureInfo.InvariantCulture)},{e.TrainImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture)}"
                        + (val ? $",{R(e.ValLoss ?? double.NaN)},{R(e.ValAccuracy ?? double.NaN)}" : ""));
        AtomicFile.WriteAllText(MetricsFile, w.ToString());
    }

    /// <summary>Writes <c>summary.json</c>. JSON has no NaN or infinity: such a value is written as <c>null</c>.</summary>
    public void WriteSummary(object summary) =>
        AtomicFile.WriteAllText(SummaryFile, SummaryJson(summary));

    /// <summary>The JSON text of a summary (snake_case keys, non-finite numbers as <c>null</c>).</summary>
    public static string SummaryJson(object summary) =>
        JsonSerializer.Serialize(summary, new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            Converters = { new FiniteOrNull() },
        });

    /// <summary>
    /// Writes <c>summary.json</c> for a run that failed before or outside <see cref="Open"/> (a sweep records every
    /// run's end): only into a folder that is absent, empty or a run folder of this tool not held by another process;
    /// returns whether it wrote.
    /// </summary>
    public static bool TryWriteSummaryOutside(string path, object summary)
    {
        path = System.IO.Path.GetFullPath(path);
        try
        {
            if (System.IO.File.Exists(path) || ContentsOf(path) == Contents.Foreign) return false;
            var lockPath = System.IO.Path.Combine(path, ".lock");
            if (System.IO.File.Exists(lockPath) && Probe(lockPath) is not null) return false;
            Directory.CreateDirectory(path);
            if (!System.IO.File.Exists(System.IO.Path.Combine(path, MarkerName)))
                AtomicFile.WriteAllText(System.IO.Path.Combine(path, MarkerName), MarkerText);
            AtomicFile.WriteAllText(System.IO.Path.Combine(path, "summary.json"), SummaryJson(summary));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or RunDirectoryException)
        {
            return false;
        }
    }

    sealed class FiniteOrNull : System.Text.Json.Serialization.JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }

    /// <summary>Cap on a run's record files read back (<c>steps.csv</c>, <c>metrics.csv</c>, <c>summary.json</c>): 64 MiB.</summary>
    public const long MaxRecordBytes = 64L << 20;

    /// <summary>Reads a run's record file (CSV or JSON) with <see cref="InputFiles"/>' checks and <see cref="MaxRecordBytes"/>.</summary>
    public static string ReadRecord(string file, string what) =>
        InputFiles.ReadAllText(file, what, MaxRecordBytes, m => new RunDirectoryException($"{file}: {m}"));

    /// <summary>Reads <c>steps.csv</c> back (for resume and tests).</summary>
    /// <remarks>A line cut short by a crash (the file is appended step by step) is skipped.</remarks>
    /// <remarks>
    /// A line cut short by a crash (the file is appended step by step) is skipped; a whole line that is not
    /// <c>step,epoch,loss,lr</c> with an integer step and epoch is a <see cref="BadInputException"/> naming the file and line.
    /// </remarks>
    public static List<StepRecord> ReadSteps(string file) =>
        Lines(file, "a steps.csv of this tool").Select((l, i) => (Line: l, Number: i + 2)).Where(x => x.Line.Length > 0)
            .Select(x => (x.Number, Fields: x.Line.Split(',')))
            .Where(x => x.Fields.Length == 4 && x.Fields.All(f => double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            .Select(x => long.TryParse(x.Fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var step)
                         && int.TryParse(x.Fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var epoch)
                ? new StepRecord(step, epoch, double.Parse(x.Fields[2], CultureInfo.InvariantCulture), double.Parse(x.Fields[3], CultureInfo.InvariantCulture))
                : throw BadCsvLine(file, x.Number, "step and epoch must be integers")).ToList();

    /// <summary>
    /// Reads <c>metrics.csv</c> back; a line that is not an epoch number and six numbers (eight with a validation split's
    /// <c>val_loss,val_accuracy</c>) is a <see cref="BadInputException"/> naming the file and line.
    /// </summary>
    public static List<EpochRecord> ReadMetrics(string file) =>
        Lines(file, "a metrics.csv of this tool").Select((l, i) => (Line: l, Number: i + 2)).Where(x => x.Line.Length > 0)
            .Select(x =>
            {
                var f = x.Line.Split(',');
                var p = new double[f.Length];
                if (f.Length is not (7 or 9) || !int.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var epoch) || epoch < 1
                    || Enumerable.Range(1, f.Length - 1).Any(i => !double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out p[i])))
                    throw BadCsvLine(file, x.Number, "expected epoch (an integer >= 1), train_loss, test_loss, test_accuracy, lr, epoch_seconds, train_images_per_second[, val_loss, val_accuracy]");
                return f.Length == 9 ? new EpochRecord(epoch, p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8])
                    : new EpochRecord(epoch, p[1], p[2], p[3], p[4], p[5], p[6]);
            }).ToList();

    static BadInputException BadCsvLine(string file, int line, string problem) =>
        new($"{file}:{line}: not a line this tool writes ({problem}); the run's records are corrupt or were modified");

    /// <summary>The lines after the header of a record file (read whole, with the checks of <see cref="ReadRecord"/>).</summary>
    static IEnumerable<string> Lines(string file, string what) =>
        ReadRecord(file, what).Split('\n').Skip(1).Select(l => l.TrimEnd('\r'));

    static string R(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        var lockPath = File(".lock");
        _lock.Dispose();
        try { System.IO.File.Delete(lockPath); } catch (IOException) { }
    }
}

/// <summary>A run folder that cannot be used as asked (exists, locked, missing).</summary>
public class RunDirectoryException(string message) : Exception(message);

/// <summary>A run folder that another live process is training in (it holds the folder's <c>.lock</c>).</summary>
public sealed class RunFolderLockedException(string path, int? pid, string message) : RunDirectoryException(message)
{
    /// <summary>The run folder.</summary>
    public string RunPath { get; } = path;
    /// <summary>The process holding it, when its id can be told.</summary>
    public int? Pid { get; } = pid;
}
