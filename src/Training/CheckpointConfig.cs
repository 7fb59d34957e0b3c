using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Weights;

namespace ResnetMnist.Training;

/// <summary>What a checkpoint is opened for: the data it needs and whether its weights must exist.</summary>
public enum CheckpointUse
{
    /// <summary><c>evaluate</c>: the weights and the test split.</summary>
    Evaluate,
    /// <summary><c>predict</c>, <c>export</c>: the weights only, no dataset.</summary>
    Predict,
    /// <summary><c>train --resume</c>: the run folder's config; its checkpoint is read by the run itself.</summary>
    Resume,
}

/// <summary>A checkpoint resolved: the config of its model and data, and the weights file (null for <see cref="CheckpointUse.Resume"/>).</summary>
public sealed record ResolvedCheckpoint(TrainingConfig Config, string? Weights)
{
    /// <summary>
    /// The model of <see cref="Weights"/> (and the <paramref name="splits"/> it needs): refused, naming the file and
    /// the first tensor, when the checkpoint holds NaN or infinite weights (a diverged run's), whose predictions,
    /// accuracy or exported model would be meaningless.
    /// </summary>
    public Session Open(Splits splits)
    {
        var weights = Weights ?? throw new InvalidOperationException("a resume opens its checkpoint through TrainingRun");
        var session = Session.Create(Config, splits, checkpoint: weights);
        if (StateDictChecks.FirstNonFinite(session.Model.state_dict()) is string bad)
        {
            session.Dispose();
            throw new CheckpointException($"{weights}: {bad} holds NaN or infinite values (the weights of a diverged run); allowed: finite weights; use an earlier checkpoint");
        }
        return session;
    }
}

/// <summary>
/// Which config a checkpoint belongs to, the one answer for <c>evaluate</c>, <c>predict</c>, <c>export</c> and
/// <c>train --resume</c>: a run folder's <c>config.yaml</c> (or <c>--config</c>), checked against the model the
/// checkpoint records; for a bare <c>.pt</c> copied out of its run, the model it records, else the model read off its
/// tensors' shapes, rebuilt as a config with the <c>--set</c> overrides on top.
/// </summary>
public static class CheckpointConfig
{
    /// <param name="checkpoint">A run folder (its <c>checkpoints/best.pt</c>, else <c>last.pt</c>) or a <c>.pt</c> state_dict.</param>
    /// <param name="config">A config to use instead of the run's own; null: the run's.</param>
    /// <param name="set">The <c>--set key=value</c> overrides.</param>
    /// <param name="note">Says where a bare file's model and data came from.</param>
    public static ResolvedCheckpoint Resolve(string checkpoint, string? config, IReadOnlyList<string> set, CheckpointUse use, Action<string>? note = null)
    {
        if (use == CheckpointUse.Resume)
            return new ResolvedCheckpoint(ConfigLoader.Load(config ?? Path.Combine(checkpoint, "config.yaml"), set), null);
        // A run folder: its best.pt, or last.pt where train.save kept no best.pt.
        string weights = !Directory.Exists(checkpoint) ? checkpoint
            : new[] { "best.pt", "last.pt" }.Select(f => Path.Combine(checkpoint, "checkpoints", f)).FirstOrDefault(File.Exists)
              ?? Path.Combine(checkpoint, "checkpoints", "best.pt");
        if (InputFiles.KindOf(weights) is InputFiles.Kind.Missing or InputFiles.Kind.Directory) throw new CheckpointException($"{weights}: checkpoint not found");
        // Refused here, before anything opens it: a FIFO or device would block the reader.
        InputFiles.RequireRegularFile(weights, "a .pt state_dict (torch.save zip)", TorchArchive.MaxFileBytes, m => new CheckpointException($"{weights}: {m}"));
        var dir = Path.GetDirectoryName(Path.GetFullPath(weights))!;
        config ??= new[] { Path.Combine(dir, "config.yaml"), Path.Combine(dir, "..", "config.yaml") }.FirstOrDefault(File.Exists);
        Native.NativeLoader.EnsureLoaded(); // before anything touches torch
        if (config is not null)
        {
            // A config wins, but must configure the model the checkpoint records (if it records one).
            var configured = ConfigLoader.Load(config, set);
            (CheckpointModel Model, string Source)? found;
            try { found = CheckpointModel.Find(weights); }
            catch (WeightsFileException) { found = null; } // an unreadable file is reported when the model loads it
            if (found is { } f && f.Model.Contradiction(configured.ModelRecord()) is { } c)
                throw new CheckpointException($"{weights}: {c.Key} is {c.Configured} in {config}{(set.Count > 0 ? " with --set" : "")} but {c.Recorded} in the checkpoint ({f.Source}); pass a config for that model, or leave it out");
            return new ResolvedCheckpoint(configured, weights);
        }
        // A bare .pt (copied out of its run): the model it records (its metadata, else the JSON beside it), else the
        // model read off the file's shapes; the data is MNIST in ./data or the packaged sample, unless --set says otherwise.
        var recorded = CheckpointModel.Find(weights);
        var tensors = WeightsFile.ReadIndex(weights).Select(e => new TensorInfo(e.Key, e.Shape, e.DType)).ToList();
        var m = WeightsInspector.Infer(tensors);
        if (recorded is null && m is null)
            throw new CheckpointException($"{weights}: no config.yaml beside it or in its run folder, no recorded model, and no conv1.weight/fc.weight to infer the model from; pass --config CONFIG.yaml");
        var dtype = m?.Dtype ?? "float32";
        var model = recorded is { } r ? r.Model.Overrides().ToArray()
            : [$"model.arch={m!.Arch.Name}", $"model.in_channels={m.InChannels}", $"model.num_classes={m.NumClasses}"];
        var settings = model.Append($"train.dtype={dtype}").ToList();
        bool needsData = use == CheckpointUse.Evaluate;
        bool mnistData = recorded is null || recorded.Value.Model.Dataset == DatasetSpecs.Mnist.Name;
        if (needsData && mnistData && !set.Any(x => x.StartsWith("data.root=", StringComparison.Ordinal))) settings.Add(PackagedFiles.DataRootOverride());
        var cfg = ConfigLoader.Parse("", null, settings.Concat(set));
        if (recorded is { } given && given.Model.Contradiction(cfg.ModelRecord()) is { } d)
            throw new CheckpointException($"{weights}: {d.Key} is {d.Configured} with --set but {d.Recorded} in the checkpoint ({given.Source}); leave it out");
        note?.Invoke((recorded is { } rec
            ? $"{weights}: no config.yaml found; model recorded in {rec.Source}: {rec.Model.Describe()}; {dtype}"
            : $"{weights}: no config.yaml found; model inferred from the file: {m!.Arch.Name}, in_channels {m.InChannels}, num_classes {m.NumClasses}, {dtype}") +
            (needsData ? $"; data: {cfg.Data.Dataset} in {cfg.Data.Root}" : ""));
        return new ResolvedCheckpoint(cfg, weights);
    }
}
