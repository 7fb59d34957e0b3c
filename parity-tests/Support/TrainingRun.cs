using ResnetMnist.Config;
using ResnetMnist.Outputs;
using ResnetMnist.Training;

namespace ResnetMnist.ParityTests;

/// <summary>Runs the library's trainer the way the tool does, into a run folder.</summary>
public static class TrainingRun
{
    public static TrainResult Run(TrainingConfig cfg, string runDir, bool resume = false, ITrainingObserver? observer = null,
        CancellationToken cancel = default, bool force = false)
    {
        using var run = RunDirectory.Open(runDir, resume, force);
        using var session = TrainingSession.Create(cfg);
        return new Trainer(session, run, observer ?? NullObserver.Instance).Run(cancel, resume, force);
    }

    /// <summary>Cancels after the given epoch finishes, or after the given global step.</summary>
    public sealed class StopAt(CancellationTokenSource cts, int afterEpoch = int.MaxValue, long afterStep = long.MaxValue) : ITrainingObserver
    {
        public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) { }
        public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond) { if (step.Step >= afterStep) cts.Cancel(); }
        public void EpochFinished(EpochRecord epoch, bool best) { if (epoch.Epoch >= afterEpoch) cts.Cancel(); }
        public void Info(string message) { }
    }
}
