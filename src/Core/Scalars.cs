using TorchSharp;

namespace ResnetMnist.Core;

/// <summary>
/// Scalars made once for the process, for the operations of every training step. TorchSharp turns a number passed
/// where a <see cref="Scalar"/> is expected into a new native Scalar on each call (its own <c>zero_()</c>,
/// <c>add_(other)</c> and BatchNorm's batch count do too) and leaves it to the finalizer; freed at a later garbage
/// collection, between the large blocks of a later step, such small blocks fragmented the C library's heap
/// (a batch-256 epoch's resident memory grew by ~60 MiB; <c>bench/NOTES.md</c>).
/// </summary>
public static class Scalars
{
    /// <summary>0 (as <c>zero_()</c> fills).</summary>
    public static readonly Scalar Zero = 0;
    /// <summary>1 (an <c>add_</c>'s default alpha, a count's increment).</summary>
    public static readonly Scalar One = 1;
}
