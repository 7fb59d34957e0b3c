namespace ResnetMnist.Weights;

/// <summary>
/// A run folder named where a weights file is expected (<c>evaluate</c>, <c>predict</c>, <c>export</c>,
/// <c>model.init_from</c>): its <c>checkpoints/best.pt</c>, or <c>last.pt</c> where <c>train.save</c> kept no best.pt.
/// </summary>
public static class RunWeights
{
    /// <summary>
    /// <paramref name="path"/> itself when it is not a folder; for a folder its best.pt, else its last.pt, else the
    /// best.pt path (missing, so that reading it reports it).
    /// </summary>
    public static string Resolve(string path) =>
        !Directory.Exists(path) ? path
        : new[] { "best.pt", "last.pt" }.Select(f => Path.Combine(path, "checkpoints", f)).FirstOrDefault(File.Exists)
          ?? Path.Combine(path, "checkpoints", "best.pt");
}
