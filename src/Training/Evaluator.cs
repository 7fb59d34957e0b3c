using ResnetMnist.Data;
using ResnetMnist.Model;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace ResnetMnist.Training;

/// <summary>Test loss, accuracy, per-class accuracy and confusion matrix, without autograd, in eval mode.</summary>
public sealed record Evaluation(double Loss, double Accuracy, long[,] Confusion, int Count)
{
    /// <summary>Percent correct for each true class (NaN when the class has no images).</summary>
    public double[] PerClassAccuracy()
    {
        int k = Confusion.GetLength(0);
        var acc = new double[k];
        for (int i = 0; i < k; i++)
        {
            long total = 0;
            for (int j = 0; j < k; j++) total += Confusion[i, j];
            acc[i] = total == 0 ? double.NaN : 100.0 * Confusion[i, i] / total;
        }
        return acc;
    }
}

public static class Evaluator
{
    /// <summary>
    /// Evaluates <paramref name="model"/> on <paramref name="data"/> in batches of <paramref name="batchSize"/>
    /// (the batch size changes no result), under inference mode. Leaves the model in eval mode; the caller restores train mode.
    /// </summary>
    /// <param name="progress">Called after each batch with the number of images scored so far.</param>
    /// <exception cref="DataException">The split has no images: accuracy is undefined, not 0%.</exception>
    public static Evaluation Run(nn.Module<Tensor, Tensor> model, ImageSplit data, int batchSize, int numClasses, Action<int>? progress = null)
    {
        data.RequireImages(training: false);
        model.eval();
        double lossSum = 0;
        long correct = 0;
        var confusion = new long[numClasses, numClasses];
        // inference mode: no autograd bookkeeping at all (no version counters, no view tracking), same kernels and values
        using var _ = inference_mode();
        // In order, no augmentation: the evaluation transform; a batch of image files is decoded while the one before is scored.
        using var order = arange(data.Count, dtype: ScalarType.Int64, device: data.Labels.device);
        using var batches = new BatchStream(data, order, batchSize);
        for (int start = 0; start < data.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int len = Math.Min(batchSize, data.Count - start);
            var (x, y) = batches.Next();
            var logits = model.forward(x);
            lossSum += cross_entropy(logits, y, reduction: nn.Reduction.Sum).to_type(ScalarType.Float64).item<double>();
            var pred = logits.argmax(1);
            correct += pred.eq(y).sum().item<long>();
            var pairs = (y * numClasses + pred).bincount(null, numClasses * numClasses).cpu().data<long>().ToArray();
            for (int i = 0; i < pairs.Length; i++) confusion[i / numClasses, i % numClasses] += pairs[i];
            progress?.Invoke(start + len);
        }
        int n = Math.Max(1, data.Count);
        return new Evaluation(lossSum / n, 100.0 * correct / n, confusion, data.Count);
    }
}
