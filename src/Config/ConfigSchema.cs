using System.Globalization;
using System.Reflection;
using System.Text;

namespace ResnetMnist.Config;

/// <summary>One config key, read from its <see cref="KeyAttribute"/> and the record property that carries it.</summary>
public sealed class ConfigKey
{
    readonly PropertyInfo? _section;
    readonly PropertyInfo _property;

    internal ConfigKey(PropertyInfo? section, PropertyInfo property, KeyAttribute attr, object? defaultValue)
    {
        (_section, _property, Attr, Default) = (section, property, attr, defaultValue);
    }

    public KeyAttribute Attr { get; }
    public string Path => Attr.Path;
    /// <summary>The section (<c>train</c>), or "" for a top-level key.</summary>
    public string Section => Path.Contains('.') ? Path[..Path.IndexOf('.')] : "";
    /// <summary>The name inside its section (<c>epochs</c>).</summary>
    public string Name => Path[(Path.IndexOf('.') + 1)..];
    public Type Type => _property.PropertyType;
    /// <summary>Type without <see cref="Nullable{T}"/>.</summary>
    public Type ValueType => Nullable.GetUnderlyingType(Type) ?? Type;
    public bool IsNullable => Nullable.GetUnderlyingType(Type) is not null;
    public object? Default { get; }
    /// <summary>Changing it changes what a run computes: a resume refuses it without --force.</summary>
    public bool ChangesResult => Attr.Result;

    /// <summary>The names allowed, for enum keys and keys with a registry; null for others.</summary>
    public IReadOnlyList<string>? Names =>
        ValueType.IsEnum ? ConfigNames.Names(ValueType)
        : Attr.Allowed?.GetProperty("Names", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as IReadOnlyList<string>;

    public object? Get(TrainingConfig c) => _property.GetValue(_section is null ? c : _section.GetValue(c));

    /// <summary>Sets the value on a config that is being built (records are mutable through reflection until handed out).</summary>
    internal void Set(TrainingConfig c, object? value) => _property.SetValue(_section is null ? c : _section.GetValue(c), value);

    /// <summary>The value as a YAML 1.1 scalar or flow list that reads back to the same value in YamlDotNet and PyYAML.</summary>
    public string Format(object? v) => v switch
    {
        null => "null",
        int i when Attr.Kind == KeyKind.Threads => i == 0 ? "auto" : i.ToString(CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        Enum e => e.Name(),
        double d => ConfigSchema.Number(d),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string s when Attr.Kind is KeyKind.Path => "'" + s.Replace("'", "''") + "'",
        _ when Attr.Kind is KeyKind.Pretrained => "'" + v.ToString()!.Replace("'", "''") + "'",
        string s => s,
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Format)) + "]",
        _ => v.ToString() ?? "null",
    };

    /// <summary>What is allowed, in words (for errors and docs).</summary>
    public string Allowed
    {
        get
        {
            if (Names is { } names) return (Type == typeof(IReadOnlyList<string>) ? "a list of: " : "") + string.Join(", ", names);
            return Attr.Kind switch
            {
                KeyKind.Threads => "auto, or an integer from 1 to " + ConfigLoader.ThreadsPerCore + " × the cores",
                KeyKind.Path => "a path",
                KeyKind.Pretrained => "none, torchvision, a weights name of model.arch (IMAGENET1K_V1, IMAGENET1K_V2, mlnet: see docs/pretrained.md), or a path to a .pth/.safetensors file",
                _ when ValueType == typeof(bool) => "true, false",
                _ when ValueType == typeof(long) => "an integer",
                _ when ValueType == typeof(int) => "an integer" + Range() + (IsNullable ? ", or null" : ""),
                _ when ValueType == typeof(double) => "a number" + Range() + (IsNullable ? ", or null" : ""),
                _ when Type == typeof(IReadOnlyList<double>) => $"a list of {(Attr.Count > 0 ? Attr.Count + " " : "")}numbers{Range()}",
                _ => ValueType.Name,
            };
        }
    }

    /// <summary>" >= 1", " in (0, 1]", or "" without bounds.</summary>
    string Range()
    {
        bool lo = !double.IsNaN(Attr.Min), hi = !double.IsNaN(Attr.Max);
        if (ValueType == typeof(int) && !Attr.MinExclusive && !Attr.MaxExclusive)
            return lo && hi ? $" >= {Attr.Min} and <= {Attr.Max}" : lo ? $" >= {Attr.Min}" : hi ? $" <= {Attr.Max}" : "";
        if (!lo && !hi) return "";
        return $" in {ConfigSchema.Interval(Attr)}";
    }
}

/// <summary>
/// The config's keys, read once from the <see cref="KeyAttribute"/>s on <see cref="TrainingConfig"/> and its section
/// records, in declaration order. Everything that lists, writes or compares keys comes from here.
/// </summary>
public static class ConfigSchema
{
    /// <summary>Every key, in the order the records declare them (the order of config.yaml).</summary>
    public static readonly IReadOnlyList<ConfigKey> Keys = Discover();

    static readonly Dictionary<string, ConfigKey> ByPath = Keys.ToDictionary(k => k.Path);

    /// <summary>The section names (<c>data</c>, <c>model</c>, ...).</summary>
    public static readonly IReadOnlyList<string> Sections = Keys.Select(k => k.Section).Where(s => s != "").Distinct().ToList();

    public static ConfigKey? Find(string path) => ByPath.GetValueOrDefault(path);

    public static ConfigKey Get(string path) => ByPath[path];

    static List<ConfigKey> Discover()
    {
        var defaults = new TrainingConfig();
        var keys = new List<ConfigKey>();
        static IEnumerable<PropertyInfo> Ordered(Type t) => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.MetadataToken);
        foreach (var p in Ordered(typeof(TrainingConfig)))
        {
            if (p.GetCustomAttribute<KeyAttribute>() is { } a) keys.Add(new ConfigKey(null, p, a, p.GetValue(defaults)));
            else if (p.PropertyType.Namespace == typeof(TrainingConfig).Namespace && p.PropertyType.IsClass && p.PropertyType != typeof(string))
            {
                var section = p.GetValue(defaults);
                foreach (var q in Ordered(p.PropertyType))
                    if (q.GetCustomAttribute<KeyAttribute>() is { } b) keys.Add(new ConfigKey(p, q, b, q.GetValue(section)));
            }
        }
        return keys;
    }

    /// <summary>
    /// The registry entry named <paramref name="name"/> (already checked against <see cref="ConfigKey.Names"/>) for a
    /// key whose type is a spec: the static <c>Get(string)</c> of its <see cref="KeyAttribute.Allowed"/> type.
    /// </summary>
    public static object Resolve(ConfigKey k, string name) =>
        k.Attr.Allowed?.GetMethod("Get", BindingFlags.Public | BindingFlags.Static, [typeof(string)])?.Invoke(null, [name])
        ?? throw new NotSupportedException($"config key {k.Path}: {k.Attr.Allowed?.Name} has no static Get(string)");

    /// <summary>A double as YAML 1.1 reads it as a float: <c>0.001</c>, <c>1.0e-08</c>, <c>10.0</c> (PyYAML reads <c>1E-08</c> as a string).</summary>
    public static string Number(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        int e = s.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            var mantissa = s[..e];
            var exponent = s[(e + 1)..];
            if (!mantissa.Contains('.')) mantissa += ".0";
            if (exponent[0] != '-' && exponent[0] != '+') exponent = "+" + exponent;
            return mantissa + "e" + exponent;
        }
        return s.Contains('.') || s.Contains("Infinity") || s == "NaN" ? s : s + ".0";
    }

    internal static string Interval(KeyAttribute a)
    {
        static string F(double d) => double.IsInfinity(d) ? (d > 0 ? "inf" : "-inf") : d.ToString(CultureInfo.InvariantCulture);
        double lo = double.IsNaN(a.Min) ? double.NegativeInfinity : a.Min, hi = double.IsNaN(a.Max) ? double.PositiveInfinity : a.Max;
        return $"{(a.MinExclusive ? "(" : "[")}{F(lo)}, {F(hi)}{(a.MaxExclusive ? ")" : "]")}";
    }

    /// <summary>The values of every key that changes a run's result, formatted: what a checkpoint records and a resume compares.</summary>
    public static Dictionary<string, string> ResultValues(TrainingConfig c) =>
        Keys.Where(k => k.ChangesResult).ToDictionary(k => k.Path, k => k.Get(c) switch
        {
            string s => s,
            ResnetMnist.Model.PretrainedChoice p => p.Text,
            var v => k.Format(v),
        });

    /// <summary>The resolved config as YAML, every key with its value; with <paramref name="comments"/> each key carries its meaning and default.</summary>
    public static string ToYaml(TrainingConfig c, bool comments = false)
    {
        var w = new StringWriter { NewLine = "\n" };
        string? section = null;
        foreach (var k in Keys)
        {
            if (k.Section != "" && k.Section != section)
            {
                section = k.Section;
                w.WriteLine($"{section}:");
            }
            var indent = k.Section == "" ? "" : "  ";
            if (comments)
                w.WriteLine($"{indent}# {Plain(k.Attr.Doc)}{(k.Attr.Unit is { } u ? $" [{u}]" : "")}. Default: {Plain(DefaultText(k))}. Allowed: {k.Allowed}.");
            w.WriteLine($"{indent}{k.Name}: {(comments && k.Attr.FollowsDataset ? "~" : k.Format(k.Get(c)))}");
        }
        return w.ToString();
    }

    static string Plain(string markdown) => markdown.Replace("`", "");

    static string DefaultText(ConfigKey k) => k.Attr.DefaultText ?? $"`{k.Format(k.Default).Trim('\'')}`";

    /// <summary>The configuration reference as a Markdown table (the README's is this, checked by a test).</summary>
    public static string MarkdownTable()
    {
        var sb = new StringBuilder();
        sb.Append("| key | default | allowed | meaning | resume may change it |\n");
        sb.Append("|---|---|---|---|---|\n");
        foreach (var k in Keys)
        {
            var allowed = k.Names is { } names
                ? (k.Type == typeof(IReadOnlyList<string>) ? "list of " : "") + string.Join(" · ", names.Select(n => $"`{n}`"))
                : k.Allowed.Replace(">=", "≥").Replace("<=", "≤");
            var unit = k.Attr.Unit is { } u ? $" ({u})" : "";
            sb.Append($"| `{k.Path}` | {DefaultText(k)} | {allowed}{unit} | {k.Attr.Doc.Replace("|", "\\|")} | {(k.ChangesResult ? "no" : "yes")} |\n");
        }
        return sb.ToString();
    }
}
