using ResnetMnist.Outputs;

namespace ResnetMnist.Training;

/// <summary>Receives progress from <see cref="Trainer"/> (the tool draws bars or prints lines from it).</summary>
public interface ITrainingObserver
{
    /// <param name="epoch">1-based.</param>
    /// <param name="firstBatch">0-based batch the epoch starts at (non-zero on a mid-epoch resume).</param>
    void EpochStarted(int epoch, int epochs, int batches, int firstBatch);
    /// <param name="batch">1-based batch within the epoch.</param>
    /// <param name="imagesPerSecond">Training throughput over the epoch so far.</param>
    void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond);
    void EpochFinished(EpochRecord epoch, bool best);
    void Info(string message);
    /// <summary>The end-of-epoch evaluation has scored <paramref name="images"/> of <paramref name="total"/> test images (called after each evaluation batch).</summary>
    void Evaluating(int images, int total) { }
}

/// <summary>An observer that ignores everything (library use and tests).</summary>
public sealed class NullObserver : ITrainingObserver
{
    public static readonly NullObserver Instance = new();
    public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
    public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { }
    public void EpochFinished(EpochRecord epoch, bool best) { }
    public void Info(string message) { }
}
