
namespace ResnetMnist.Data;

/// <summary>
/// The name of each output of a model, in label order, as every command shows it (evaluate's confusion matrix,
/// predict, export's metadata, summary.json and best.json): the dataset's class names (torchvision's
/// <c>classes</c>; for CIFAR-10 the <c>label_names</c> of <c>batches.meta</c>, whose md5 the reader checks, so they are
/// known without the file: a predict or export needs no data folder),
/// and the label number for outputs beyond them (a <c>model.num_classes</c> larger than the dataset's).
/// </summary>
public static class ClassNames
{
    /// <summary>The names of a model with <paramref name="numClasses"/> outputs trained on <paramref name="dataset"/>.</summary>
    public static IReadOnlyList<string> For(DatasetSpec dataset, int numClasses) => For(dataset.ClassNames, numClasses);

    /// <summary><paramref name="names"/> cut or extended (by label numbers) to <paramref name="numClasses"/> outputs.</summary>
    public static IReadOnlyList<string> For(IReadOnlyList<string> names, int numClasses) =>
        Enumerable.Range(0, numClasses).Select(i => i < names.Count ? names[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
}
