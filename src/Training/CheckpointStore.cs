using System.Collections;
using System.Security.Cryptography;
using System.Text.Json;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Weights;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary><c>best.json</c>, written beside <c>best.pt</c>: the model it belongs to, the epoch and its test accuracy (%);
/// with a validation split (which chose the epoch) also its validation accuracy (%), else null.</summary>
/// <param name="ClassNames">The name of each output, in label order (<see cref="Data.ClassNames"/>).</param>
public sealed record BestCheckpoint(CheckpointModel Model, int Epoch, double TestAccuracy,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] double? ValAccuracy = null,
    IReadOnlyList<string>? ClassNames = null);

/// <summary>
/// The one place that writes and reads checkpoints, in <c>RUN/checkpoints/</c>: <c>last.pt</c> (the model's
/// state_dict, loadable with <c>torch.load</c> + <c>load_state_dict</c>), <c>last.optim.pt</c> (the optimizer's
/// state_dict in PyTorch's format), <c>last.json</c> (<see cref="TrainingState"/>, written last, with the other
/// two files' sha256) and <c>best.pt</c> (weights of the best test accuracy; a hard link to that epoch's <c>last.pt</c>
/// where the file system allows, so that it takes no second copy on disk) with <c>best.json</c> (<see cref="BestCheckpoint"/>).
/// Given the <see cref="CheckpointModel"/>, every <c>.pt</c> records it in its pickle metadata
/// (<c>state_dict._metadata["resnet_mnist"]</c>) and the JSON files in their <c>model</c> field. Every file is replaced atomically.
/// </summary>
public sealed class CheckpointStore(string folder, CheckpointModel? model = null)
{
    public string Folder { get; } = folder;
    public string LastWeights => Path.Combine(Folder, "last.pt");
    public string LastOptimizer => Path.Combine(Folder, "last.optim.pt");
    public string LastState => Path.Combine(Folder, "last.json");
    public string BestWeights => Path.Combine(Folder, "best.pt");
    public string BestState => Path.Combine(Folder, "best.json");
    /// <summary>The model recorded in what this store writes (null: nothing recorded).</summary>
    public CheckpointModel? Model { get; } = model;
    /// <summary>The model's class names, written into <c>best.json</c> (null: left out).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>
    /// Serialises a model's state_dict in PyTorch's zip/pickle format: contiguous CPU copies, so that weights kept
    /// in channels-last layout (<c>model.channels_last</c>) are written in the standard layout PyTorch expects.
    /// </summary>
    /// <param name="record">The model to record in the pickle metadata (<see cref="CheckpointModel.Embed(byte[])"/>); null: none.</param>
    public static byte[] WeightsBytes(nn.Module model, CheckpointModel? record = null)
    {
        using var ms = new MemoryStream();
        WriteWeights(ms, model, record);
        return ms.ToArray();
    }

    /// <summary>
    /// <see cref="WeightsBytes"/> written to <paramref name="output"/>; with a record, PyBridge's archive goes through a
    /// scratch file that is deleted on close, so that no copy of the weights is held in managed memory.
    /// </summary>
    public static void WriteWeights(Stream output, nn.Module model, CheckpointModel? record = null)
    {
        if (record is null)
        {
            Pickle(output);
            return;
        }
        using var scratch = ResnetMnist.Core.ScratchFile.Create();
        Pickle(scratch);
        scratch.Position = 0;
        record.Embed(scratch, output);

        void Pickle(Stream to)
        {
            using var scope = NewDisposeScope();
            var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => MemoryFormat.StandardCopy(kv.Value.detach().cpu()));
            PyTorchPickler.PickleStateDict(to, sd, leaveOpen: true);
        }
    }

    /// <summary>
    /// Writes the checkpoint files that <paramref name="save"/> (<c>train.save</c>) keeps: the resumable <c>last.*</c>
    /// with <see cref="SaveKind.Both"/>/<see cref="SaveKind.Last"/>, <c>best.pt</c> (when <paramref name="best"/>)
    /// with <see cref="SaveKind.Both"/>/<see cref="SaveKind.Best"/>.
    /// </summary>
    public void Save(nn.Module model, OptimizerHelper optimizer, TrainingState state, bool best, SaveKind save = SaveKind.Both)
    {
        bool last = save is SaveKind.Both or SaveKind.Last;
        best &= save is SaveKind.Both or SaveKind.Best;
        if (!last && !best) return;
        if (!last)
        {
            AtomicFile.Write(BestWeights, f => WriteWeights(f, model, Model));
            WriteBestState(state);
            return;
        }
        // Streamed to their files (a checkpoint is 45–135 MB: held in memory, it raised resident memory by ~300 MB);
        // the sha256s are read back from the files just written.
        AtomicFile.Write(LastOptimizer, f => WriteOptimizer(f, optimizer));
        AtomicFile.Write(LastWeights, f => WriteWeights(f, model, Model));
        state = state with { WeightsSha256 = ShaOfFile(LastWeights), OptimizerSha256 = ShaOfFile(LastOptimizer), Model = Model ?? state.Model };
        AtomicFile.WriteAllText(LastState, JsonSerializer.Serialize(state, Json));
        if (best)
        {
            AtomicFile.LinkOrCopy(LastWeights, BestWeights); // the same bytes: one copy on disk
            WriteBestState(state);
        }
    }

    /// <summary>Writes <c>best.json</c> (when the model is known): the epoch just finished is the best one.</summary>
    void WriteBestState(TrainingState state)
    {
        if (Model is null) return;
        var epoch = state.Epochs?.FirstOrDefault(e => e.Epoch == state.EpochsDone);
        AtomicFile.WriteAllText(BestState, JsonSerializer.Serialize(new BestCheckpoint(Model, state.EpochsDone, epoch?.TestAccuracy ?? state.BestAccuracy, epoch?.ValAccuracy, ClassNames), Json) + "\n");
    }

    /// <summary>
    /// The optimizer's state_dict in PyTorch's format (<c>last.optim.pt</c>). PyBridge writes a tensor's own elements
    /// but records its storage offset and strides, so a state tensor that is a slice of a larger buffer (the flat
    /// optimizers' moments) or not contiguous (channels-last weights) would come out unreadable: each such tensor is
    /// written as a standalone contiguous copy, and the optimizer gets its own tensors back afterwards, untouched.
    /// </summary>
    public static byte[] OptimizerBytes(OptimizerHelper optimizer)
    {
        using var ms = new MemoryStream();
        WriteOptimizer(ms, optimizer);
        return ms.ToArray();
    }

    /// <summary><see cref="OptimizerBytes"/> written to <paramref name="output"/>.</summary>
    public static void WriteOptimizer(Stream output, OptimizerHelper optimizer)
    {
        var swapped = new List<(OptimizerState State, System.Reflection.FieldInfo Field, Tensor Own)>();
        try
        {
            using (no_grad())
                foreach (var state in optimizer.state_dict().State)
                    foreach (var field in state.GetType().GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
                        if (field.GetValue(state) is Tensor t && !MemoryFormat.IsStandalone(t))
                        {
                            field.SetValue(state, MemoryFormat.StandardCopy(t));
                            swapped.Add((state, field, t));
                        }
            optimizer.save_py(output, leaveOpen: true);
        }
        finally
        {
            foreach (var (state, field, own) in swapped)
            {
                ((Tensor)field.GetValue(state)!).Dispose();
                field.SetValue(state, own);
            }
        }
    }

    /// <summary>Largest <c>last.json</c> accepted (about 2 KB plus ~250 bytes per epoch).</summary>
    public const long MaxStateBytes = 16L << 20;

    /// <summary>
    /// Reads <c>last.json</c> whole, checks it (<see cref="TrainingState.Validate"/>: every field; with
    /// <paramref name="cfg"/> also against the run it continues, its <paramref name="trainImages"/> and
    /// <paramref name="force"/>), and checks that <c>last.pt</c>/<c>last.optim.pt</c> are the files it describes.
    /// </summary>
    public TrainingState ReadState(TrainingConfig? cfg = null, int trainImages = 0, bool force = false)
    {
        if (!File.Exists(LastState) && !Directory.Exists(LastState)) throw new CheckpointException($"{LastState}: no checkpoint to resume from");
        var bytes = InputFiles.ReadAllBytes(LastState, "a checkpoint state (last.json)", MaxStateBytes, m => new CheckpointException($"{LastState}: {m}"));
        TrainingState? state;
        try { state = JsonSerializer.Deserialize<TrainingState>(bytes, Json); }
        catch (JsonException e) { throw new CheckpointException($"{LastState}: corrupt checkpoint state ({TorchArchiveFirstLine(e.Message)})"); }
        if (state is null) throw new CheckpointException($"{LastState}: empty checkpoint state");
        state.Validate(LastState, cfg, trainImages, force);
        Verify(LastWeights, state.WeightsSha256);
        Verify(LastOptimizer, state.OptimizerSha256);
        return state;
    }

    /// <summary>
    /// The state this run's own process wrote last, for a summary written while the run ends (no checks: it is not
    /// resumed from); null when there is none or it cannot be read.
    /// </summary>
    public TrainingState? TryReadWritten()
    {
        try { return File.Exists(LastState) ? JsonSerializer.Deserialize<TrainingState>(File.ReadAllBytes(LastState), Json) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException) { return null; }
    }

    static string TorchArchiveFirstLine(string m) => ResnetMnist.Weights.TorchArchive.FirstLine(m);

    /// <summary>Bytes of the CPU generator's state (<c>torch.get_rng_state()</c>).</summary>
    public static int RngStateLength()
    {
        ResnetMnist.Native.NativeLoader.EnsureLoaded();
        using var s = get_rng_state();
        return (int)s.numel();
    }

    /// <summary>Loads the last checkpoint into <paramref name="model"/> and <paramref name="optimizer"/>, both read through <see cref="TorchArchive"/>.</summary>
    public void Load(nn.Module model, OptimizerHelper optimizer)
    {
        string file = LastWeights;
        try
        {
            LoadWeights(model, LastWeights);
            ReleaseReadBuffers();
            file = LastOptimizer;
            using (var optim = SanitizedCopy(LastOptimizer))
            {
                ReleaseReadBuffers(); // the archive's copy of the state, now in the scratch file
                optimizer.load_py(optim);
            }
            (optimizer as IFlatStep)?.AdoptLoadedState();
            ReleaseReadBuffers();
        }
        catch (Exception e) when (e is not CheckpointException and not IOException)
        {
            // libtorch and PyBridge errors on the file's contents (a state of another shape, a missing entry): named by file.
            throw new CheckpointException($"{file}: cannot load the checkpoint ({TorchArchiveFirstLine(e.Message)})");
        }
    }

    /// <summary>
    /// Returns what reading a checkpoint left behind (the archive's storages and the unpickler's per-tensor arrays: as
    /// large as the tensors, in the large-object heap, which only a full collection frees) before the next file is
    /// read and before training allocates: measured, a resumed ResNet-18 Adam run peaked at 1,012 MiB resident
    /// without these collections and the changes around them, against 632 MiB for the same run started fresh.
    /// The tensors the unpickler built, once freed, leave holes in glibc's arena (35–45 MB after the weights and the
    /// optimizer state), resident until reused: <see cref="ResnetMnist.Native.NativeHeap.Trim"/> returns them (measured,
    /// resident memory before training 415 → 367 MB, that resumed run's peak 604 → 573 MiB).
    /// </summary>
    static void ReleaseReadBuffers()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        // Tensors the unpickler built and that were disposed or dropped release their storages from finalizers.
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        ResnetMnist.Native.NativeHeap.Trim();
    }

    /// <summary>
    /// The checked archive's <see cref="TorchArchive.SanitizedZip"/> (on disk), with the archive itself unreachable on
    /// return: read in the caller's frame, an unoptimized (Debug) build keeps it alive to the caller's end, and a
    /// collection there cannot free its storages (measured: 87 MB of a ResNet-18 Adam state stayed in the managed heap).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static Stream SanitizedCopy(string path) => ReadArchive(path).SanitizedZip();

    static TorchArchive ReadArchive(string path)
    {
        try { return TorchArchive.Read(path); }
        catch (WeightsFileException e) { throw new CheckpointException(e.Message); }
    }

    /// <summary>Loads a checkpoint file into <paramref name="model"/> (see <see cref="LoadWeights(nn.Module, Stream, string)"/>).</summary>
    public static void LoadWeights(nn.Module model, string path) => LoadWeights(model, ReadArchive(path), path);

    /// <summary>
    /// Copies a PyTorch state_dict stream into <paramref name="model"/>'s own tensors (keeping requires_grad),
    /// strictly: the same keys and shapes, or a <see cref="CheckpointException"/> listing every difference.
    /// </summary>
    public static void LoadWeights(nn.Module model, Stream stream, string name)
    {
        TorchArchive archive;
        try { archive = TorchArchive.Read(stream, name); }
        catch (WeightsFileException e) { throw new CheckpointException(e.Message); }
        LoadWeights(model, archive, name);
    }

    static void LoadWeights(nn.Module model, TorchArchive archive, string name)
    {
        Dictionary<string, Tensor> loaded;
        try { loaded = WeightsFile.StateDict(archive); }
        catch (WeightsFileException e) { throw new CheckpointException(e.Message); }
        var own = model.state_dict();
        var problems = new List<string>();
        foreach (var key in own.Keys.Where(k => !loaded.ContainsKey(k))) problems.Add($"missing {key}");
        foreach (var key in loaded.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected {key}");
        foreach (var (key, t) in own)
            if (loaded.TryGetValue(key, out var src) && !src.shape.SequenceEqual(t.shape))
                problems.Add($"{key}: expected [{string.Join(", ", t.shape)}], found [{string.Join(", ", src.shape)}]");
            else if (src is not null && StateDictChecks.KindProblem(key, src, t) is string kind) problems.Add(kind);
        if (problems.Count > 0)
            throw new CheckpointException($"{name}: does not fit this model ({problems.Count} differences: {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? "; ..." : "")})");
        using (no_grad())
            foreach (var (key, t) in own)
            {
                using var src = loaded[key];
                t.copy_(src);
            }
    }

    static void Verify(string file, string sha)
    {
        if (!File.Exists(file)) throw new CheckpointException($"{file}: missing; the checkpoint is incomplete");
        if (ShaOfFile(file) != sha)
            throw new CheckpointException($"{file}: does not match last.json (sha256 differs); the checkpoint is incomplete or was modified");
    }

    /// <summary>The sha256 of a checkpoint file, lower-case hex (read through the checkpoint size limit).</summary>
    public static string ShaOfFile(string path)
    {
        using var f = InputFiles.OpenRead(path, "a checkpoint file", TorchArchive.MaxFileBytes, m => new CheckpointException($"{path}: {m}"));
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    public static string RngState()
    {
        using var s = get_rng_state();
        return Convert.ToBase64String(s.bytes.ToArray());
    }

    /// <summary>Sets the global generator to a state read by <see cref="ReadState"/> (whose length it checked).</summary>
    internal static void RestoreRng(TrainingState validated)
    {
        using var t = tensor(Convert.FromBase64String(validated.RngState), dtype: ScalarType.Byte);
        set_rng_state(t);
    }
}

/// <summary>A checkpoint that cannot be used; the message starts with the file.</summary>
public sealed class CheckpointException(string message) : BadInputException(message);
