using ResnetMnist.Data;
using ResnetMnist.Data.Images;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>
/// One pass over a split in a given order, batch by batch, as a <c>DataLoader</c> yields it: <see cref="Next"/> gives
/// each batch's model input and labels. The training loop (<see cref="TrainingLoop"/>: <c>train</c>, <c>parity</c>,
/// <c>bench</c>) and the <see cref="Evaluator"/> (<c>evaluate</c> and every epoch's evaluation) take their batches here.
/// For a split of image files, the files of the batch after the one just handed out are read, decoded and transformed
/// in the background (<see cref="ImageFolderBatches.Transform"/>, on the thread pool) while the caller trains or
/// evaluates: one batch ahead at most, and never past the end of the pass, so never into the next epoch (whose order
/// is drawn after this one ends). A split held in memory is gathered when asked (an <c>index_select</c>).
/// </summary>
/// <remarks>
/// Prefetching changes no result. The augmentation's draws (<c>RandomResizedCrop</c>, flips) for the batch ahead are
/// made in the background from a private generator that starts from the global generator's state as the batch handed
/// out left it. When that batch is asked for and the global generator still stands in that state (nothing drew in
/// between: a training step draws nothing), the global generator is set to where the private one ended, i.e. it has
/// made exactly the draws it would have made itself, in the same order; otherwise the background work is dropped and
/// the batch made on the calling thread. The background never touches the global generator, so a checkpoint written
/// between batches records the state of a run without prefetching. A file that is not an image, met in the
/// background, is thrown when its batch is asked for, where it would have been thrown without prefetching; work
/// for a batch never asked for (the pass stopped early: an interrupt, an error, a parity check's last step) is
/// cancelled and awaited by <see cref="Dispose"/>, so none outlives the pass.
/// </remarks>
public sealed class BatchStream : IDisposable
{
    readonly ImageSplit _data;
    readonly Tensor _order;
    readonly long[] _indices;
    readonly int _batchSize;
    readonly IAugmentation? _augment;
    readonly CancellationTokenSource _cancel = new();
    int _next;
    Ahead? _ahead;

    /// <summary>Work started for the next batch: the global generator's state it started from (null: it draws
    /// nothing) and its result, the batch's bytes and the private generator's state after the draws.</summary>
    sealed record Ahead(byte[]? StartState, Task<(byte[] Chw, byte[]? EndState)> Work);

    /// <param name="data">The split.</param>
    /// <param name="order">Indices into <paramref name="data"/> (int64, on its labels' device), batched in this order; the caller keeps it alive.</param>
    /// <param name="batchSize">Images per batch (the last batch partial).</param>
    /// <param name="augment">The training augmentation (none: the evaluation transform).</param>
    /// <param name="firstBatch">The 0-based batch to start at (a mid-epoch resume).</param>
    /// <param name="prefetch">Prepare the next batch in the background (default); false: each batch when asked for.</param>
    public BatchStream(ImageSplit data, Tensor order, int batchSize, IAugmentation? augment = null, int firstBatch = 0, bool prefetch = true)
    {
        (_data, _order, _batchSize, _augment, _next, Prefetch) = (data, order, batchSize, augment, firstBatch, prefetch);
        using (var cpu = order.cpu()) _indices = cpu.data<long>().ToArray();
        Count = TrainingLoop.BatchesPerEpoch(_indices.Length, batchSize);
    }

    /// <summary>Batches in the pass (the last one partial).</summary>
    public int Count { get; }
    /// <summary>Whether the batch after the one handed out is prepared in the background.</summary>
    public bool Prefetch { get; }
    /// <summary>Batches handed out that were prepared in the background (the others were made when asked for).</summary>
    public int Prefetched { get; private set; }
    /// <summary>Whether work for a batch not yet asked for has been started (and not yet handed out or cancelled).</summary>
    public bool Pending => _ahead is not null;

    /// <summary>
    /// The next batch: model input (the session's dtype, on the labels' device) and int64 labels, created in the
    /// caller's dispose scope. Throws the batch's own error (a file that is not an image) as making it would.
    /// </summary>
    public (Tensor X, Tensor Y) Next()
    {
        if (_next >= Count) throw new InvalidOperationException($"all {Count} batches of the pass were taken");
        int b = _next++;
        using var indices = TrainingLoop.BatchIndices(_order, b, _batchSize);
        var y = _data.Labels.index_select(0, indices);
        if (_data.Folder is not { } folder) return (_data.Gather(indices, _augment), y);

        var perImage = _augment as IImageAugmentation;
        byte[]? chw = Collect();
        chw ??= folder.Transform(Span(b), perImage);
        var x = _data.FolderInput(chw, perImage is null ? _augment : null);
        if (Prefetch && b + 1 < Count) Start(Span(b + 1), folder, perImage);
        return (x, y);
    }

    long[] Span(int batch)
    {
        int start = batch * _batchSize;
        return _indices.AsSpan(start, Math.Min(_batchSize, _indices.Length - start)).ToArray();
    }

    /// <summary>The background's bytes for the batch asked for, with the global generator moved past its draws;
    /// null when none were prepared or the global generator moved since (then nothing is changed).</summary>
    byte[]? Collect()
    {
        if (_ahead is not { } ahead) return null;
        _ahead = null;
        var (chw, end) = ahead.Work.GetAwaiter().GetResult();   // a failure is the batch's own (it drew nothing yet)
        if (ahead.StartState is not null)
        {
            if (!GlobalState().AsSpan().SequenceEqual(ahead.StartState)) return null;
            using var state = tensor(end!, dtype: ScalarType.Byte);
            set_rng_state(state);
        }
        Prefetched++;
        return chw;
    }

    /// <summary>Starts preparing the images at <paramref name="indices"/> in the background, their draws from a copy of the global generator.</summary>
    void Start(long[] indices, ImageFolderBatches folder, IImageAugmentation? augment)
    {
        var start = augment is null ? null : GlobalState();
        var token = _cancel.Token;
        var work = Task.Run(() =>
        {
            if (start is null) return (folder.Transform(indices, null, cancel: token), (byte[]?)null);
            using var generator = new Generator();
            using (var state = tensor(start, dtype: ScalarType.Byte)) generator.set_state(state);
            var chw = folder.Transform(indices, augment, generator, token);
            using var end = generator.get_state();
            return (chw, end.bytes.ToArray());
        }, token);
        _ahead = new Ahead(start, work);
    }

    static byte[] GlobalState()
    {
        using var state = get_rng_state();
        return state.bytes.ToArray();
    }

    /// <summary>Cancels and awaits work for a batch not asked for (its result and its error are nobody's): no thread
    /// works for this pass afterwards.</summary>
    public void Dispose()
    {
        if (_ahead is { } ahead)
        {
            _ahead = null;
            _cancel.Cancel();
            try { ahead.Work.Wait(); }
            catch (AggregateException) { }
        }
        _cancel.Dispose();
    }
}
