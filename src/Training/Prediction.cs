using ResnetMnist.Data;
using static TorchSharp.torch;

namespace ResnetMnist.Training;

/// <summary>
/// One image's result: the class the model gives it (index, name, its probability and every class's), or why the
/// image could not be read (<see cref="Error"/>, the other fields null).
/// </summary>
public sealed record PredictionResult(string Image, int? Class, string? ClassName, double? Probability, double[]? Probabilities, string? Error)
{
    /// <summary>A result for an image that could not be read.</summary>
    public static PredictionResult Failed(string image, BadInputException e) => new(image, null, null, null, null, e.Message);
}

/// <summary>The <c>predict</c> use case: a checkpoint's model applied to images prepared as its training images were.</summary>
public static class Prediction
{
    /// <summary>
    /// Classifies each of <paramref name="images"/> (files; expand folders with <see cref="InputImage.Expand"/> first)
    /// with the model of <paramref name="checkpoint"/>, in order. Every image is checked before the model is built, so
    /// that bad images are refused cheaply and no model is built when none is readable; a bad image gets its error and
    /// the others are still classified. Each result is passed to <paramref name="onResult"/> as soon as it is known
    /// (the refused ones first) and returned in the images' order.
    /// </summary>
    /// <param name="invert">Grey models: invert grey levels; null: as <see cref="PredictInput.Load"/> decides (MNIST: by the border).</param>
    /// <param name="saveInput">A folder (created) to write what the model saw, as <c>&lt;image name&gt;.png</c>; null: none.</param>
    public static IReadOnlyList<PredictionResult> Run(ResolvedCheckpoint checkpoint, IReadOnlyList<string> images, bool? invert,
        string? saveInput, Action<PredictionResult>? onResult = null)
    {
        var results = new PredictionResult?[images.Count];
        void Done(int at, PredictionResult r) { results[at] = r; onResult?.Invoke(r); }
        for (int at = 0; at < images.Count; at++)
            try { InputImage.Check(images[at]); }
            catch (BadInputException e) { Done(at, PredictionResult.Failed(images[at], e)); }
        if (results.Any(r => r is null))
        {
            var cfg = checkpoint.Config;
            using var session = checkpoint.Open(Splits.None);
            session.Model.eval();
            if (saveInput is not null)
            {
                Outputs.OutputFolder.RefuseSystemFolder(saveInput);
                Directory.CreateDirectory(saveInput);
            }
            var names = ClassNames.For(session.Dataset, cfg.Model.NumClasses);   // imagefolder: the class folders of ROOT/train
            // An image-folder model: read as Pillow reads it and transformed as its validation images were.
            var transforms = session.Dataset.Files is Data.Images.ImageFolderFiles
                ? Data.Images.ImageTransforms.For(cfg.Data.ImageSize, cfg.Data.ResizeSize) : null;
            var saved = new HashSet<string>(StringComparer.Ordinal);
            using var _ = no_grad();
            for (int at = 0; at < images.Count; at++)
            {
                if (results[at] is not null) continue;
                var image = images[at];
                using var scope = NewDisposeScope();
                Tensor x;
                try { x = PredictInput.Load(image, invert, session.Dataset, transforms); }
                catch (DataException e) { Done(at, PredictionResult.Failed(image, e)); continue; }
                if (saveInput is not null) PredictInput.SavePng(x, SavedName(saveInput, image, saved));
                if (cfg.Data.Normalize) x = PredictInput.Normalize(x, session.Dataset);
                x = x.to_type(session.Dtype).to(session.Device);
                var p = nn.functional.softmax(session.Model.forward(x), 1)[0].to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                int cls = Array.IndexOf(p, p.Max());
                Done(at, new PredictionResult(image, cls, names[cls], p[cls], p, null));
            }
        }
        return results!;
    }

    /// <summary><c>DIR/&lt;image name&gt;.png</c>; a second image of the same name in this call gets <c>-2</c>, <c>-3</c>, ….</summary>
    static string SavedName(string dir, string image, HashSet<string> taken)
    {
        var stem = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(image));
        var name = stem + ".png";
        for (int n = 2; !taken.Add(name); n++) name = $"{stem}-{n}.png";
        return Path.Combine(dir, name);
    }
}
