using ResnetMnist.Data;
using ResnetMnist.Outputs;

namespace ResnetMnist.Training;

/// <summary>
/// The <c>evaluate</c> use case: a checkpoint's model on its config's test set, with everything the report shows.
/// </summary>
/// <param name="Checkpoint">The weights file, full path.</param>
/// <param name="Arch">model.arch.</param>
/// <param name="Dataset">data.dataset.</param>
/// <param name="Result">Loss, accuracy and the confusion matrix.</param>
/// <param name="ClassNames">The name of each class, in label order.</param>
public sealed record CheckpointEvaluation(string Checkpoint, string Arch, string Dataset, Evaluation Result, IReadOnlyList<string> ClassNames)
{
    /// <summary>The name of the file <see cref="SaveInRun"/> writes in a run folder.</summary>
    public const string FileName = "eval.json";

    /// <summary>Evaluates the model of <paramref name="checkpoint"/> on its test set (<c>train.eval_batch_size</c> per batch).</summary>
    public static CheckpointEvaluation Run(ResolvedCheckpoint checkpoint)
    {
        var cfg = checkpoint.Config;
        var weights = checkpoint.Weights ?? throw new InvalidOperationException("evaluate needs a weights file");
        using var session = checkpoint.Open(Splits.Test);
        var e = Evaluator.Run(session.Model, session.Test, cfg.Train.EvalBatchSize, cfg.Model.NumClasses);
        return new(Path.GetFullPath(weights), cfg.Model.Arch.Name, cfg.Data.Dataset.Name, e, Data.ClassNames.For(session.Dataset, cfg.Model.NumClasses));
    }

    /// <summary>The report as JSON (<c>evaluate --json</c>, <c>eval.json</c>): control characters escaped by the serializer.</summary>
    public string Json()
    {
        int k = ClassNames.Count;
        return RunDirectory.SummaryJson(new
        {
            Checkpoint,
            Arch,
            Dataset,
            TestImages = Result.Count,
            TestLoss = Result.Loss,
            TestAccuracy = Result.Accuracy,
            ClassNames,
            PerClassAccuracy = Result.PerClassAccuracy(),
            Confusion = Enumerable.Range(0, k).Select(i => Enumerable.Range(0, k).Select(j => Result.Confusion[i, j]).ToArray()).ToArray(),
        });
    }

    /// <summary>
    /// Keeps the report beside a run's other files as <c>eval.json</c> when <paramref name="checkpointArgument"/> is a
    /// run folder (nothing otherwise). A folder that cannot be written (read-only) does not cost the results: the
    /// problem is returned (one line) instead of thrown; null when written or not a run folder.
    /// </summary>
    public string? SaveInRun(string checkpointArgument)
    {
        if (!Directory.Exists(checkpointArgument) || !File.Exists(Path.Combine(checkpointArgument, RunDirectory.MarkerName))) return null;
        try
        {
            AtomicFile.WriteAllText(Path.Combine(checkpointArgument, FileName), Json() + "\n");
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return ex.Message; }
    }
}
