using System.Globalization;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Weights;

namespace ResnetMnist.Training;

/// <summary>
/// A run's checkpoint, in the spirit of nanoGPT's checkpoint dict: where training stands, the model it belongs to, the
/// result-affecting config values and the epochs' history, written whole as <c>last.json</c> beside the PyTorch
/// files (<c>last.pt</c>, <c>last.optim.pt</c>, named by their sha256) and read whole by
/// <see cref="CheckpointStore.ReadState"/>, which checks it once (<see cref="Validate"/>). Built with
/// <see cref="Start"/> and changed with <c>with</c>.
/// </summary>
public sealed record TrainingState
{
    /// <summary>This layout's number; a <c>last.json</c> without it was written by an older version and is refused.</summary>
    public const int CurrentFormat = 2;

    /// <summary><see cref="CurrentFormat"/> for what this version writes; 0 when absent (older files).</summary>
    public int Format { get; init; }
    /// <summary>Epochs finished (and evaluated).</summary>
    public int EpochsDone { get; init; }
    /// <summary>Batches of epoch <c>EpochsDone + 1</c> already trained (0 at an epoch boundary).</summary>
    public int BatchesDone { get; init; }
    /// <summary>Whether epoch <c>EpochsDone + 1</c>'s DataLoader draws were made (then its order is rebuilt from <see cref="SamplerSeed"/>).</summary>
    public bool OrderDrawn { get; init; }
    /// <summary>Seed of that epoch's permutation (RandomSampler's generator), when <see cref="OrderDrawn"/>.</summary>
    public long SamplerSeed { get; init; }
    /// <summary>Sum of that epoch's batch losses so far.</summary>
    public double EpochLossSum { get; init; }
    /// <summary>Optimizer steps so far.</summary>
    public long GlobalStep { get; init; }
    /// <summary>Best test accuracy so far, %; -1 before the first evaluation.</summary>
    public double BestAccuracy { get; init; } = -1;
    /// <summary>The epoch (1-based) of <see cref="BestAccuracy"/>; null before the first evaluation.</summary>
    public int? BestEpoch { get; init; }
    /// <summary>The global generator's state (<c>torch.get_rng_state()</c>), base64.</summary>
    public string RngState { get; init; } = "";
    /// <summary>Result-affecting config values (<see cref="ConfigSchema.ResultValues"/>), to refuse a resume that would change them.</summary>
    public IReadOnlyDictionary<string, string> Config { get; init; } = new Dictionary<string, string>();
    /// <summary>sha256 of <c>last.pt</c>, lower-case hex.</summary>
    public string WeightsSha256 { get; init; } = "";
    /// <summary>sha256 of <c>last.optim.pt</c>, lower-case hex.</summary>
    public string OptimizerSha256 { get; init; } = "";
    /// <summary>Training time of epoch <c>EpochsDone + 1</c> so far (before an interrupt), seconds, so that a resumed epoch's time is whole.</summary>
    public double EpochSeconds { get; init; }
    /// <summary>The model the checkpoint belongs to (absent from files written before it was recorded).</summary>
    public CheckpointModel? Model { get; init; }
    /// <summary>Every finished epoch, as <c>metrics.csv</c> lists them (null in older files).</summary>
    public IReadOnlyList<EpochRecord>? Epochs { get; init; }

    /// <summary>The state before the first step of a run of <paramref name="cfg"/>.</summary>
    public static TrainingState Start(TrainingConfig cfg) =>
        new() { Format = CurrentFormat, Config = ConfigSchema.ResultValues(cfg), Epochs = [] };

    /// <summary>Whether the run stands at the end of <paramref name="cfg"/>'s <c>train.epochs</c>.</summary>
    public bool Complete(TrainingConfig cfg) => EpochsDone >= cfg.Train.Epochs && BatchesDone == 0 && !OrderDrawn;

    /// <summary>
    /// The one check of a checkpoint state, read from <paramref name="file"/>: every field on its own (a state read
    /// back may have been edited); with <paramref name="cfg"/> also against the run it continues: the config
    /// (<see cref="CheckResumable"/>, unless <paramref name="force"/>), the epochs and batches within its range
    /// (<paramref name="trainImages"/> training images), the global step consistent with them. Throws a
    /// <see cref="CheckpointException"/> naming the file and the field.
    /// </summary>
    public void Validate(string file, TrainingConfig? cfg = null, int trainImages = 0, bool force = false)
    {
        CheckpointException Bad(string field, string what) => new($"{file}: {field}: {what}; the checkpoint state is corrupt or was modified");
        CheckpointException Edited(string field, string problem) =>
            new($"{file}: {field} {problem}; the checkpoint state was edited or is damaged (train again with --force)");
        if (Format != CurrentFormat)
            throw new CheckpointException($"{file}: format: {(Format == 0 ? "absent (written by an older version of this tool)" : Format.ToString(CultureInfo.InvariantCulture))}; allowed: {CurrentFormat}; finish the run with the version that started it, or train it again with --force");
        if (EpochsDone < 0) throw Bad("epochs_done", $"{EpochsDone}; allowed: an integer >= 0");
        if (BatchesDone < 0) throw Bad("batches_done", $"{BatchesDone}; allowed: an integer >= 0");
        if (GlobalStep < 0) throw Bad("global_step", $"{GlobalStep}; allowed: an integer >= 0");
        if (GlobalStep < BatchesDone) throw Bad("global_step", $"{GlobalStep} is less than batches_done {BatchesDone}");
        if (!double.IsFinite(EpochLossSum) || EpochLossSum < 0) throw Bad("epoch_loss_sum", $"{EpochLossSum}; allowed: a finite number >= 0");
        if (!(BestAccuracy >= -1 && BestAccuracy <= 100)) throw Bad("best_accuracy", $"{BestAccuracy}; allowed: -1 (none yet) to 100");
        if (BatchesDone > 0 && !OrderDrawn) throw Bad("batches_done", $"{BatchesDone} but order_drawn is false (no epoch in progress)");
        if (Config is null) throw Bad("config", "missing");
        foreach (var (name, sha) in new[] { ("weights_sha256", WeightsSha256), ("optimizer_sha256", OptimizerSha256) })
            if (sha is null || sha.Length != 64 || !sha.All(char.IsAsciiHexDigitLower))
                throw Bad(name, "not a sha256; allowed: 64 lowercase hex digits");
        if (Model?.Problem() is string modelProblem) throw Bad("model", modelProblem);
        if (RngState is null) throw Bad("rng_state", "missing");
        byte[] rng;
        try { rng = Convert.FromBase64String(RngState); }
        catch (FormatException) { throw Bad("rng_state", "not base64"); }
        int rngBytes = CheckpointStore.RngStateLength();
        if (rng.Length != rngBytes) throw Bad("rng_state", $"{rng.Length} bytes; allowed: exactly {rngBytes} (torch.get_rng_state())");
        if (cfg is not null) ValidateAgainst(cfg, trainImages, force, Edited);
        // The history last: an edited epochs_done is named as such (above) rather than as a history of another length.
        if (Epochs is null) throw Bad("epochs", "missing");
        if (Epochs.Count != EpochsDone || Epochs.Select((e, i) => e is not null && e.Epoch == i + 1).Any(ok => !ok))
            throw Bad("epochs", $"{Epochs.Count} records; allowed: one per epoch done, 1..{EpochsDone} in order");
        if (BestEpoch is int best && (best < 1 || best > EpochsDone))
            throw Bad("best_epoch", $"{best}; allowed: the epoch of best_accuracy (1..{EpochsDone})");
    }

    /// <summary>The part of <see cref="Validate"/> that compares the state with the run it continues.</summary>
    void ValidateAgainst(TrainingConfig cfg, int trainImages, bool force, Func<string, string, CheckpointException> edited)
    {
        CheckResumable(Config, ConfigSchema.ResultValues(cfg), force);
        int epochs = cfg.Train.Epochs, batches = TrainingLoop.BatchesPerEpoch(trainImages, cfg.Train.BatchSize);
        if (EpochsDone > epochs) throw edited("epochs_done", $"is {EpochsDone}; allowed: 0..{epochs} (train.epochs)");
        if (BatchesDone >= batches) throw edited("batches_done", $"is {BatchesDone}; allowed: 0..{batches - 1} ({batches} batches per epoch)");
        if (EpochsDone == epochs && (BatchesDone > 0 || OrderDrawn)) throw edited("batches_done", $"is {BatchesDone} (order_drawn {OrderDrawn}) after the last epoch");
        // With the same batches per epoch (same data and batch size) every epoch took exactly `batches` steps.
        var now = ConfigSchema.ResultValues(cfg);
        bool sameShape = new[] { "train.batch_size", "data.train_limit", "data.dataset", "data.root", "data.val_split" }
            .All(k => Config.TryGetValue(k, out var v) && v == now[k]);
        long expected = (long)EpochsDone * batches + BatchesDone;
        if (sameShape && GlobalStep != expected)
            throw edited("global_step", $"is {GlobalStep}, but epochs_done {EpochsDone} × {batches} batches + batches_done {BatchesDone} = {expected}");
        if (!sameShape && GlobalStep < EpochsDone + (long)BatchesDone)
            throw edited("global_step", $"is {GlobalStep}, fewer than epochs_done {EpochsDone} + batches_done {BatchesDone}");
    }

    /// <summary>
    /// Throws a <see cref="CheckpointException"/> when <paramref name="now"/> changes a value of a result-changing key
    /// (<see cref="ConfigSchema.ResultValues"/>) that <paramref name="saved"/> recorded, or one it did not record (a
    /// checkpoint of an older version), unless forced. <c>train.epochs</c> may grow (the run goes on for more epochs,
    /// as an uninterrupted run of that length would), except where the learning rates of the steps already taken
    /// depend on it: <c>onecycle</c>, and <c>cosine</c> without <c>scheduler.t_max</c>.
    /// </summary>
    public static void CheckResumable(IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string> now, bool force)
    {
        var changed = now.Where(kv => !saved.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Where(kv => !(kv.Key == "train.epochs" && EpochsMayGrow(saved, now)))
            .Select(kv => saved.TryGetValue(kv.Key, out var v) ? $"{kv.Key} was '{v}', now '{kv.Value}'" : $"{kv.Key} was not recorded, now '{kv.Value}'").ToList();
        if (changed.Count > 0 && !force)
            throw new CheckpointException($"the config changed in ways that alter the result ({string.Join("; ", changed)}); use the run's own config.yaml, or --force to resume anyway"
                + (changed.Any(c => c.StartsWith("train.epochs ", StringComparison.Ordinal)) ? EpochsNote(now) : ""));
    }

    static bool EpochsMayGrow(IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string> now) =>
        saved.TryGetValue("train.epochs", out var was) && now.TryGetValue("train.epochs", out var next)
        && int.TryParse(was, NumberStyles.None, CultureInfo.InvariantCulture, out int a) && int.TryParse(next, NumberStyles.None, CultureInfo.InvariantCulture, out int b)
        && b > a && !SpansEpochs(now);

    /// <summary>Whether the schedule's learning rates depend on <c>train.epochs</c> (<c>onecycle</c>; <c>cosine</c> without <c>t_max</c>).</summary>
    static bool SpansEpochs(IReadOnlyDictionary<string, string> cfg) =>
        cfg.TryGetValue("scheduler.name", out var s) && (s == "onecycle" || (s == "cosine" && cfg.TryGetValue("scheduler.t_max", out var t) && t == "null"));

    static string EpochsNote(IReadOnlyDictionary<string, string> now) =>
        SpansEpochs(now) && now.TryGetValue("scheduler.name", out var s)
            ? $" (train.epochs may grow on resume, but scheduler {s}{(s == "cosine" ? " without scheduler.t_max" : "")} spreads its learning rates over train.epochs, so the steps already taken would not be those of a run of the new length)"
            : "";
}
