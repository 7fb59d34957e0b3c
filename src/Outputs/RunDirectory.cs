using System.Globalization;
using System.Text.Json;
using ResnetMnist.Config;

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

    RunDirectory(string path, FileStream lockFile) { Path = path; _lock = lockFile; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

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
        try
        {
            using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.Read, FileShare.None);
        }
        catch (IOException) { throw Locked(path); }
        catch (UnauthorizedAccessException e) { throw new RunDirectoryException($"{path}: cannot use the run folder ({e.Message})"); }
    }

    static bool CheckState(string path, bool resume, bool force)
    {
        if (System.IO.File.Exists(path)) throw new RunDirectoryException($"{path}: is a file, expected a run folder");
        bool hasRun = Directory.Exists(path) && (System.IO.File.Exists(System.IO.Path.Combine(path, "steps.csv"))
                                                 || Directory.Exists(System.IO.Path.Combine(path, "checkpoints")));
        if (resume && !hasRun) throw new RunDirectoryException($"{path}: no run to resume here (no steps.csv or checkpoints/)");
        if (!resume && hasRun && !force)
            throw new RunDirectoryException($"{path}: already holds a run; resume it with --resume {path}, pick another --out, or pass --force to overwrite");
        return hasRun;
    }

    static RunDirectoryException Locked(string path) =>
        new($"{path}: another run is writing to this folder (locked: {System.IO.Path.Combine(path, ".lock")}); wait for it to finish or pick another --out");

    /// <summary>
    /// Opens <paramref name="path"/> for a new run (it must not hold a run unless <paramref name="force"/>) or for
    /// a resume (<paramref name="resume"/>: it must hold one). Throws <see cref="RunDirectoryException"/> otherwise.
    /// </summary>
    public static RunDirectory Open(string path, bool resume, bool force)
    {
        path = System.IO.Path.GetFullPath(path);
        bool hasRun = CheckState(path, resume, force);
        try
        {
            Directory.CreateDirectory(System.IO.Path.Combine(path, "checkpoints"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunDirectoryException($"{path}: cannot create the run folder ({e.Message})");
        }
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(System.IO.Path.Combine(path, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            lockFile.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            lockFile.Write(pid);
            lockFile.Flush();
        }
        catch (IOException)
        {
            throw Locked(path);
        }
        var dir = new RunDirectory(path, lockFile);
        if (!resume && hasRun && force) dir.Clear();
        return dir;
    }

    void Clear()
    {
        foreach (var f in new[] { StepsFile, MetricsFile, SummaryFile, PlotFile, ConfigFile })
            if (System.IO.File.Exists(f)) System.IO.File.Delete(f);
        foreach (var f in Directory.GetFiles(Checkpoints)) System.IO.File.Delete(f);
    }

    public void WriteConfig(TrainingConfig cfg) => AtomicFile.WriteAllText(ConfigFile, ConfigLoader.ToYaml(cfg));

    /// <summary>Rewrites <c>steps.csv</c> with every step so far (atomic; a few hundred KB at most).</summary>
    public void WriteSteps(IReadOnlyList<StepRecord> steps)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        w.WriteLine("step,epoch,loss,lr");
        foreach (var s in steps) w.WriteLine($"{s.Step},{s.Epoch},{R(s.Loss)},{R(s.Lr)}");
        AtomicFile.WriteAllText(StepsFile, w.ToString());
    }

    public void WriteMetrics(IReadOnlyList<EpochRecord> epochs)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        w.WriteLine("epoch,train_loss,test_loss,test_accuracy,lr,epoch_seconds,train_images_per_second");
        foreach (var e in epochs)
            w.WriteLine($"{e.Epoch},{R(e.TrainLoss)},{R(e.TestLoss)},{R(e.TestAccuracy)},{R(e.Lr)},{e.EpochSeconds.ToString("F3", CultureInfo.InvariantCulture)},{e.TrainImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture)}");
        AtomicFile.WriteAllText(MetricsFile, w.ToString());
    }

    public void WriteSummary(object summary) =>
        AtomicFile.WriteAllText(SummaryFile, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));

    /// <summary>Reads <c>steps.csv</c> back (for resume and tests).</summary>
    public static List<StepRecord> ReadSteps(string file) =>
        System.IO.File.ReadLines(file).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))
            .Select(p => new StepRecord(long.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture),
                double.Parse(p[2], CultureInfo.InvariantCulture), double.Parse(p[3], CultureInfo.InvariantCulture))).ToList();

    public static List<EpochRecord> ReadMetrics(string file) =>
        System.IO.File.ReadLines(file).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray())
            .Select(p => new EpochRecord((int)p[0], p[1], p[2], p[3], p[4], p[5], p[6])).ToList();

    static string R(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        var lockPath = _lock.Name;
        _lock.Dispose();
        try { System.IO.File.Delete(lockPath); } catch (IOException) { }
    }
}

/// <summary>A run folder that cannot be used as asked (exists, locked, missing).</summary>
public sealed class RunDirectoryException(string message) : Exception(message);
