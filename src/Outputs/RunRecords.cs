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
/// <param name="ValLoss">Mean per-image cross-entropy on the validation split (<c>data.val_split</c>); null without one.</param>
/// <param name="ValAccuracy">Percent of validation images classified correctly; null without a validation split.</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double TestLoss, double TestAccuracy, double Lr,
    double EpochSeconds, double TrainImagesPerSecond, double? ValLoss = null, double? ValAccuracy = null)
{
    /// <summary>The accuracy that chooses the best epoch and stops early: validation's with a split, else the test set's.</summary>
    public double SelectionAccuracy => ValAccuracy ?? TestAccuracy;
}
