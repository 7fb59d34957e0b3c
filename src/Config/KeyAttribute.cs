namespace ResnetMnist.Config;

/// <summary>How a key's text becomes a value, where the property's type alone does not say it.</summary>
public enum KeyKind
{
    /// <summary>By the property's type: integer, number, bool, enum, name from <see cref="KeyAttribute.Allowed"/>, list.</summary>
    Auto,
    /// <summary>A file or folder path, resolved against the config file's folder (<c>--set</c>: the current folder).</summary>
    Path,
    /// <summary><c>auto</c> (stored as 0) or a thread count from 1 to <see cref="ConfigLoader.ThreadsPerCore"/> × cores.</summary>
    Threads,
    /// <summary><c>none</c>, a weights name of <c>model.arch</c> (<see cref="ResnetMnist.Model.PretrainedChoice"/>) or a path to a weights file.</summary>
    Pretrained,
}

/// <summary>
/// Declares a config key on the record property that holds it: the key's path, what it means, its bounds and whether
/// changing it changes a run's result. The property's type and initial value are the key's type and default.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class KeyAttribute(string path, string doc) : Attribute
{
    /// <summary>Dotted path in the YAML, e.g. <c>train.epochs</c>.</summary>
    public string Path { get; } = path;
    /// <summary>One sentence for <c>config keys</c>, the README table and commented configs (Markdown).</summary>
    public string Doc { get; } = doc;
    /// <summary>False when the key changes nothing a run computes (threads, batch size of evaluation, logging), so that a resume may change it. Default true.</summary>
    public bool Result { get; init; } = true;
    /// <summary>Lowest allowed value (numbers, list items); NaN = none.</summary>
    public double Min { get; init; } = double.NaN;
    /// <summary>Highest allowed value; NaN = none.</summary>
    public double Max { get; init; } = double.NaN;
    public bool MinExclusive { get; init; }
    public bool MaxExclusive { get; init; }
    /// <summary>For lists of numbers: exactly this many items; 0 = any.</summary>
    public int Count { get; init; }
    /// <summary>For names: a type with a static <c>Names</c> property (<see cref="IReadOnlyList{T}"/> of string) listing what is allowed,
    /// and, where the key's type is not a string, a static <c>Get(string)</c> that returns the value a name stands for.</summary>
    public Type? Allowed { get; init; }
    public KeyKind Kind { get; init; }
    /// <summary>Unit of the value, for the docs (<c>epochs</c>, <c>images</c>, <c>s</c>).</summary>
    public string? Unit { get; init; }
    /// <summary>The default as the docs show it, where it depends on another key.</summary>
    public string? DefaultText { get; init; }
    /// <summary>
    /// Unset or null, the key takes <c>data.dataset</c>'s value (<see cref="ConfigLoader"/>); commented configs
    /// (<c>init</c>, <c>config keys --yaml</c>) write it as <c>~</c> so that it keeps following the dataset.
    /// </summary>
    public bool FollowsDataset { get; init; }
}
