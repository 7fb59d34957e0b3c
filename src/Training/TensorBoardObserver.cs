using ResnetMnist.Outputs;
using TorchSharp.Modules;

namespace ResnetMnist.Training;

/// <summary>
/// <c>train.tensorboard</c>: passes everything on to <paramref name="inner"/> and writes TensorBoard event files to
/// <c>RUN/tensorboard/</c> with TorchSharp's own <c>SummaryWriter</c>: <c>train/loss</c> and <c>train/lr</c> per
/// step (x = global step), <c>epoch/train_loss</c>, <c>epoch/test_loss</c>, <c>epoch/test_accuracy</c> (%) and
/// <c>epoch/lr</c> per epoch (x = epoch). A resumed run adds a new event file; TensorBoard reads them together.
/// The folder follows <see cref="OutputFolder.Subfolder"/>: a link or a file in its place is refused, and links inside
/// it are removed (SummaryWriter opens its files by name), so no event is written outside the run.
/// </summary>
public sealed class TensorBoardObserver(ITrainingObserver inner, string folder) : ITrainingObserver
{
    readonly SummaryWriter _writer = TorchSharp.torch.utils.tensorboard.SummaryWriter(OutputFolder.Subfolder(folder, removeLinks: true));

    public void EpochStarted(int epoch, int epochs, int batches, int firstBatch) => inner.EpochStarted(epoch, epochs, batches, firstBatch);

    public void StepFinished(StepRecord step, int batch, int batches, double imagesPerSecond)
    {
        int x = (int)Math.Min(step.Step, int.MaxValue);
        _writer.add_scalar("train/loss", (float)step.Loss, x);
        _writer.add_scalar("train/lr", (float)step.Lr, x);
        inner.StepFinished(step, batch, batches, imagesPerSecond);
    }

    public void EpochFinished(EpochRecord epoch, bool best)
    {
        _writer.add_scalar("epoch/train_loss", (float)epoch.TrainLoss, epoch.Epoch);
        _writer.add_scalar("epoch/test_loss", (float)epoch.TestLoss, epoch.Epoch);
        _writer.add_scalar("epoch/test_accuracy", (float)epoch.TestAccuracy, epoch.Epoch);
        _writer.add_scalar("epoch/lr", (float)epoch.Lr, epoch.Epoch);
        if (epoch.ValLoss is double valLoss) _writer.add_scalar("epoch/val_loss", (float)valLoss, epoch.Epoch);
        if (epoch.ValAccuracy is double valAccuracy) _writer.add_scalar("epoch/val_accuracy", (float)valAccuracy, epoch.Epoch);
        inner.EpochFinished(epoch, best);
    }

    public void Info(string message) => inner.Info(message);

    public void Evaluating(int images, int total) => inner.Evaluating(images, total);
}
