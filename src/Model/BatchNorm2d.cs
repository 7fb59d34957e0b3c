using static TorchSharp.torch;

namespace ResnetMnist.Model;

/// <summary>
/// PyTorch's <c>nn.BatchNorm2d</c> (eps 1e-5, momentum 0.1, affine, tracking running statistics): TorchSharp's
/// <see cref="TorchSharp.Modules.BatchNorm"/>, whose forward is PyTorch's <c>_BatchNorm.forward</c> step for step,
/// with the one difference that counting the batch (<c>num_batches_tracked += 1</c>) uses the process's Scalar 1
/// (<see cref="Core.Scalars"/>).
/// </summary>
/// <remarks>
/// TorchSharp's own increment makes two <c>Scalar</c>s per layer and step and leaves them to the finalizer: their
/// small native blocks, freed at a later garbage collection between the large blocks of a step, fragmented the C
/// library's heap, which grew by ~60 MiB over a batch-256 epoch (ResNet-18, 40 such Scalars per step). The values,
/// the state_dict and the module's name are TorchSharp's.
/// </remarks>
public sealed class BatchNorm2d(long numFeatures)
    : TorchSharp.Modules.BatchNorm(numFeatures, 1e-5, 0.1, affine: true, track_running_stats: true, null, null, nameof(BatchNorm2d))
{
    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        double factor = momentum ?? 0.0;
        if (training && track_running_stats && num_batches_tracked is not null)
        {
            num_batches_tracked.add_(Core.Scalars.One, Core.Scalars.One);
            factor = momentum ?? 1.0 / num_batches_tracked.item<long>();   // cumulative average when momentum is None
        }
        bool useBatchStats = training || (running_mean is null && running_var is null);
        bool useBuffers = !training || track_running_stats;
        return nn.functional.batch_norm(input, useBuffers ? running_mean : null, useBuffers ? running_var : null, weight, bias,
            useBatchStats, factor, eps);
    }

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"expected 4D input (got {input.ndim}D input)");
    }
}
