namespace ResnetMnist.Outputs;

/// <summary>One optimizer step: a row of <c>steps.csv</c>.</summary>
/// <param name="Step">1-based step over the whole run.</param>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Loss">The batch's mean cross-entropy (loss.item()).</param>
/// <param name="Lr">Learning rate used for the step.</param>
public sealed record StepRecord(long Step, int Epoch, double Loss, double Lr);

/// <summary>One epoch: a row of <c>metrics.csv</c>.</summary>
/// <param name="TrainLoss">Mean of the epoch's batch losses (the reference's "loss").</param>
/// <param name="TestLoss">Mean per-image cross-entropy on the test split.</param>
/// <param name="TestAccuracy">Percent of test images classified correctly.</param>
/// <param name="EpochSeconds">Wall time of the epoch's training steps, in seconds (evaluation excluded).</param>
/// <param name="TrainImagesPerSecond">Training throughput over the epoch.</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double TestLoss, double TestAccuracy, double Lr,
    double EpochSeconds, double TrainImagesPerSecond);
