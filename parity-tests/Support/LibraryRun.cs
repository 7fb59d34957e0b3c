using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests;

/// <summary>Trains through the library's own use case (<see cref="TrainingRun"/>), as the tool does.</summary>
public static class LibraryRun
{
    public static TrainResult Run(TrainingConfig cfg, string runDir, bool resume = false, ITrainingObserver? observer = null,
        CancellationToken cancel = default, bool force = false) =>
        TrainingRun.Train(cfg, runDir, observer, cancel, new RunOptions(resume, force)).Result;

    /// <summary>Cancels after the given epoch finishes, or after the given global step.</summary>
    public sealed class StopAt(CancellationTokenSource cts, int afterEpoch = int.MaxValue, long afterStep = long.MaxValue) : ITrainingObserver
    {
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { if (step.Step >= afterStep) cts.Cancel(); }
        public void EpochFinished(EpochRecord epoch, bool best) { if (epoch.Epoch >= afterEpoch) cts.Cancel(); }
        public void Info(string message) { }
    }
}
