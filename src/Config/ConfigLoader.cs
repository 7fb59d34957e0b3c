using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using ResnetMnist.Data;

namespace ResnetMnist.Config;

/// <summary>
/// The one place that reads configs: YAML file + <c>--set key.path=value</c> overrides (overrides win) →
/// a validated <see cref="TrainingConfig"/>, or a <see cref="ConfigException"/> naming file, line, column, key
/// and what is allowed. Relative paths resolve against the config file's folder.
/// </summary>
public static class ConfigLoader
{
    /// <summary>Every key the config accepts, in the order config.yaml lists them (from <see cref="ConfigSchema"/>).</summary>
    public static IEnumerable<string> Keys => ConfigSchema.Keys.Select(k => k.Path);

    static readonly HashSet<string> Sections = ConfigSchema.Sections.ToHashSet();

    /// <summary>Largest config file accepted (the bundled ones are under 1 KB).</summary>
    public const long MaxConfigBytes = 1L << 20;
    /// <summary>Deepest nesting of YAML mappings and lists accepted (a config needs 2).</summary>
    public const int MaxDepth = 16;
    /// <summary>Largest <c>train.batch_size</c> / <c>train.eval_batch_size</c>.</summary>
    public const int MaxBatch = 65_536;
    /// <summary><c>threads</c> may be at most this many times the core count.</summary>
    public const int ThreadsPerCore = 4;

    /// <summary>
    /// The config at <paramref name="path"/>, or, without a CONFIG file (<c>train</c>, <c>parity</c>, <c>sweep</c>), the
    /// packaged quickstart with <c>data.root</c> = <c>./data</c> for every dataset, except MNIST where <c>./data</c>
    /// holds none: then the packaged sample. The quickstart pins no dataset-dependent key, so
    /// <c>model.in_channels</c>/<c>num_classes</c> follow <c>data.dataset</c>; <paramref name="overrides"/> (<c>--set</c>) win.
    /// </summary>
    public static TrainingConfig LoadOrQuickstart(string? path, IEnumerable<string> overrides) => LoadOrQuickstart(path, ConfigOverride.Set(overrides), null);

    /// <summary>As above, with overrides that name their option (<c>--set</c>, <c>--grid</c>) and the loader's warnings.</summary>
    public static TrainingConfig LoadOrQuickstart(string? path, IEnumerable<ConfigOverride> overrides, Action<string>? warn)
    {
        if (path is not null) return Load(path, overrides, warn);
        var quickstart = PackagedFiles.Quickstart ?? throw new DataException(
            $"{Path.Combine(PackagedFiles.BaseDirectory, "configs", "quickstart.yaml")}: the packaged quickstart config is missing (a damaged install); give a CONFIG.yaml ({ToolCommand.Name} init writes one)");
        var set = overrides.ToList();
        var cfg = Load(quickstart, set.Prepend(new ConfigOverride("--set", PackagedFiles.LocalDataRoot())), warn);
        if (set.Any(o => o.Assignment.Split('=')[0].Trim() == "data.root") || cfg.Data.Dataset != DatasetSpecs.Mnist || PackagedFiles.HoldsMnist(cfg.Data.Root))
            return cfg;
        return Load(quickstart, set.Prepend(new ConfigOverride("--set", $"data.root={PackagedFiles.Sample}")), null); // warned above
    }

    /// <summary>Reads <paramref name="path"/> and applies <paramref name="overrides"/> (<c>--set</c>).</summary>
    public static TrainingConfig Load(string path, IEnumerable<string>? overrides = null) => Load(path, ConfigOverride.Set(overrides), null);

    /// <summary>
    /// Reads <paramref name="path"/> and applies <paramref name="overrides"/> in order; errors name each override's
    /// option. Notes on keys ignored (<see cref="IgnoredOptimizerKeys"/>) go to <paramref name="warn"/>, one line each.
    /// </summary>
    public static TrainingConfig Load(string path, IEnumerable<ConfigOverride> overrides, Action<string>? warn)
    {
        if (Directory.Exists(path)) throw new ConfigException($"{path}: is a directory, expected a YAML config file");
        if (!File.Exists(path)) throw new ConfigException($"{path}: config file not found");
        string text;
        try
        {
            var bytes = InputFiles.ReadAllBytes(path, "a YAML config file", MaxConfigBytes, m => new ConfigException($"{path}: {m}"));
            text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException) { throw new ConfigException($"{path}: is not UTF-8 text; expected a YAML config file"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigException($"{path}: cannot read: {e.Message}"); }
        return Parse(text, Path.GetFullPath(path), overrides, warn);
    }

    /// <summary>Parses YAML text; <paramref name="sourcePath"/> names it in errors and anchors relative paths (null: current folder).</summary>
    public static TrainingConfig Parse(string yaml, string? sourcePath, IEnumerable<string>? overrides = null) =>
        Parse(yaml, sourcePath, ConfigOverride.Set(overrides), null);

    /// <summary>As <see cref="Parse(string, string?, IEnumerable{string}?)"/>, with overrides that name their option, and <paramref name="warn"/>.</summary>
    public static TrainingConfig Parse(string yaml, string? sourcePath, IEnumerable<ConfigOverride> overrides, Action<string>? warn)
    {
        string file = sourcePath ?? "<config>";
        var values = new Dictionary<string, Entry>();
        var root = ParseYaml(yaml, file);
        if (root is not null)
        {
            if (root is not YamlMappingNode map)
                throw new ConfigException($"{At(file, root)}: the config must be a mapping of keys (seed, data, model, train, optimizer, scheduler)");
            Flatten(map, "", file, values);
        }
        foreach (var o in overrides) ApplyOverride(o, values);

        var baseDir = sourcePath is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(sourcePath)!;
        return new Reader(values, baseDir, warn).Build(sourcePath);
    }

    /// <param name="Origin">The file's path, or <see cref="CommandLine"/> for an override.</param>
    internal sealed record Entry(YamlNode Node, string Where, string Origin);

    /// <summary>The <see cref="Entry.Origin"/> of a value given on the command line (<c>--set</c>, <c>--grid</c>).</summary>
    const string CommandLine = "--set";

    /// <summary>
    /// The optimizer keys that apply to some optimizers only, with the ones they apply to. When <c>optimizer.name</c>
    /// comes from the command line and the file sets one of these for another optimizer, the file's value is ignored
    /// (the key takes its default) with a warning: a sweep over <c>optimizer.name=sgd,adam</c> on a config written for
    /// SGD. The same mismatch within the file, or within the command line, stays an error.
    /// </summary>
    public static readonly IReadOnlyList<(string Key, OptimizerKind[] AppliesTo)> IgnoredOptimizerKeys =
    [
        ("optimizer.momentum", [OptimizerKind.Sgd]), ("optimizer.nesterov", [OptimizerKind.Sgd]),
        ("optimizer.betas", [OptimizerKind.Adam, OptimizerKind.AdamW]), ("optimizer.eps", [OptimizerKind.Adam, OptimizerKind.AdamW]),
    ];

    /// <summary>
    /// Walks the YAML events (no recursion, no object graph) before anything is built: at most one document, nesting at
    /// most <see cref="MaxDepth"/> deep. YamlDotNet builds nodes recursively, so a deeply nested file would otherwise
    /// overflow the stack.
    /// </summary>
    static void CheckShape(string yaml, string where)
    {
        var parser = new Parser(new StringReader(yaml));
        int depth = 0, documents = 0;
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case YamlDotNet.Core.Events.DocumentStart:
                    if (++documents > 1)
                        throw new ConfigException($"{where}:{parser.Current.Start.Line}:{parser.Current.Start.Column}: a second YAML document ('---'); allowed: exactly one document");
                    break;
                case YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart:
                    if (++depth > MaxDepth)
                        throw new ConfigException($"{where}:{parser.Current.Start.Line}:{parser.Current.Start.Column}: nested more than {MaxDepth} levels deep; allowed: at most {MaxDepth}");
                    break;
                case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                    depth--;
                    break;
            }
        }
    }

    static YamlNode? ParseYaml(string yaml, string file)
    {
        try
        {
            CheckShape(yaml, file);
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            if (stream.Documents.Count == 0) return null;
            var root = stream.Documents[0].RootNode;
            // An empty or null document ("", "~", "null") is an empty config.
            return root is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" } ? null : root;
        }
        catch (YamlException e)
        {
            var inner = e.InnerException?.Message ?? e.Message;
            throw new ConfigException($"{file}:{e.Start.Line}:{e.Start.Column}: malformed YAML: {Trim(inner)}");
        }
    }

    static string Clip(string s) => s.Length > 60 ? s[..60] + "..." : s;

    static string Trim(string m) => m.Contains("): ") ? m[(m.IndexOf("): ") + 3)..] : m;

    static string At(string file, YamlNode n) => $"{file}:{n.Start.Line}:{n.Start.Column}";

    static void Flatten(YamlMappingNode map, string prefix, string file, Dictionary<string, Entry> values)
    {
        foreach (var (k, v) in map.Children)
        {
            var name = prefix + ((k as YamlScalarNode)?.Value ?? "?");
            if (prefix == "" && Sections.Contains(name))
            {
                if (v is YamlMappingNode sub) { Flatten(sub, name + ".", file, values); continue; }
                if (v is YamlScalarNode { Value: null or "" or "~" or "null" }) continue; // empty section
                throw new ConfigException($"{At(file, v)}: {name}: expected a mapping of {name}.* keys");
            }
            if (ConfigSchema.Find(name) is null) throw Unknown(name, At(file, k));
            values[name] = new Entry(v, At(file, v), file);
        }
    }

    static void ApplyOverride(ConfigOverride over, Dictionary<string, Entry> values)
    {
        var (option, o) = (over.Option, over.Assignment);
        int eq = o.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"{option} {o}: expected key.path=value (for example --set optimizer.lr=0.01)");
        var key = o[..eq].Trim();
        var text = o[(eq + 1)..];
        if (ConfigSchema.Find(key) is null) throw Unknown(key, $"{option} {o}");
        YamlNode node;
        try
        {
            CheckShape(text, $"{option} {Clip(o)}");
            var s = new YamlStream();
            s.Load(new StringReader(text.Length == 0 ? "null" : text));
            node = s.Documents.Count == 0 ? new YamlScalarNode("null") : s.Documents[0].RootNode;
        }
        catch (YamlException e) { throw new ConfigException($"{option} {Clip(o)}: value is not valid YAML: {Trim(e.Message)}"); }
        values[key] = new Entry(node, $"{option} {o}", CommandLine);
    }

    static ConfigException Unknown(string key, string where)
    {
        var best = Keys.Concat(Sections).Select(k => (k, d: DidYouMean.Distance(key, k))).Concat(Keys.Select(k => (k, d: DidYouMean.Distance(key, k[(k.IndexOf('.') + 1)..]) + 1)))
            .OrderBy(t => t.d).First();
        var hint = best.d <= Math.Max(2, key.Length / 3) ? $" (did you mean '{best.k}'?)" : "";
        return new ConfigException($"{where}: unknown key '{key}'{hint}; see the README's configuration reference for every key");
    }

    /// <summary>Typed access to the flattened entries, with range checks and precise errors.</summary>
    sealed class Reader(Dictionary<string, Entry> values, string baseDir, Action<string>? warn)
    {
        public TrainingConfig Build(string? source)
        {
            IgnoreOtherOptimizersKeys();
            var cfg = new TrainingConfig { SourcePath = source };
            foreach (var key in ConfigSchema.Keys) key.Set(cfg, Read(key, cfg));

            // The rules that span keys.
            var dataset = cfg.Data.Dataset;
            if (Scalar("data.root") == ResnetMnist.Data.PackagedFiles.Sample)
                cfg = cfg with { Data = cfg.Data with { Root = SampleRoot(dataset) } };
            if (!values.ContainsKey("model.in_channels") || Scalar("model.in_channels") is null)
                cfg = cfg with { Model = cfg.Model with { InChannels = dataset.Channels } };
            else if (cfg.Model.InChannels != dataset.Channels)
                throw Bad("model.in_channels", $"is {cfg.Model.InChannels}, but data.dataset {dataset.Name} has {dataset.Channels}-channel images; allowed: {dataset.Channels}");
            if (!values.ContainsKey("model.num_classes") || Scalar("model.num_classes") is null)
                cfg = cfg with { Model = cfg.Model with { NumClasses = dataset.Files is ResnetMnist.Data.Images.ImageFolderFiles ? FolderClasses(cfg) : dataset.NumClasses } };
            if (cfg.Data.Augment && dataset.Augmentation is null)
                throw Bad("data.augment", $"applies to {string.Join(", ", ResnetMnist.Data.DatasetSpecs.All.Where(d => d.Augmentation is not null).Select(d => d.Name))} only (data.dataset is {dataset.Name}); allowed: false");
            // Written with their defaults into every run's config.yaml, so only a value that would change something is refused.
            if (dataset.Files is not ResnetMnist.Data.Images.ImageFolderFiles && cfg.Data.ImageSize != new DataConfig().ImageSize)
                throw Bad("data.image_size", $"applies to imagefolder only (data.dataset is {dataset.Name}); allowed: leave it out");
            if (dataset.Files is not ResnetMnist.Data.Images.ImageFolderFiles && cfg.Data.ResizeSize is not null)
                throw Bad("data.resize_size", $"applies to imagefolder only (data.dataset is {dataset.Name}); allowed: null or leave it out");
            if (!values.ContainsKey("optimizer.weight_decay") && cfg.Optimizer.Name == OptimizerKind.AdamW)
                cfg = cfg with { Optimizer = cfg.Optimizer with { WeightDecay = 0.01 } };
            if (cfg.Optimizer.Nesterov && (cfg.Optimizer.Name != OptimizerKind.Sgd || cfg.Optimizer.Momentum <= 0))
                throw Bad("optimizer.nesterov", "needs optimizer.name: sgd and optimizer.momentum > 0");
            if (cfg.Optimizer.Momentum > 0 && cfg.Optimizer.Name != OptimizerKind.Sgd)
                throw Bad("optimizer.momentum", $"applies to sgd only (optimizer.name is {cfg.Optimizer.Name.Name()}; use optimizer.betas)");
            if (cfg.Train.EarlyStopPatience is not null && cfg.Data.ValSplit == 0)
                throw Bad("train.early_stop_patience", "needs a validation split (data.val_split > 0): stopping on test accuracy would select on the test set; allowed: null, or set data.val_split");
            return cfg;
        }

        /// <summary>imagefolder's classes: the sub-folders of <c>ROOT/train</c>.</summary>
        int FolderClasses(TrainingConfig cfg)
        {
            var train = ResnetMnist.Data.Images.ImageFolderFiles.SplitFolder(cfg.Data.Root, train: true);
            if (!Directory.Exists(train))
                throw Bad("data.root", $"'{cfg.Data.Root}' has no train folder; allowed: a folder holding train/<class>/… and val/<class>/… (or set model.num_classes)");
            return ResnetMnist.Data.Images.ImageFolder.FindClasses(train).Count;
        }

        /// <summary>
        /// Drops the file's values of <see cref="IgnoredOptimizerKeys"/> that do not apply to an optimizer named on the
        /// command line, with one warning per key; only values that would change something (not the default) count.
        /// </summary>
        void IgnoreOtherOptimizersKeys()
        {
            if (!values.TryGetValue("optimizer.name", out var name) || name.Origin != CommandLine) return;
            var kind = ConfigNames.Parse<OptimizerKind>(Choice("optimizer.name", OptimizerKind.Adam.Name(), ConfigNames.Names(typeof(OptimizerKind))));
            foreach (var (key, appliesTo) in IgnoredOptimizerKeys)
            {
                if (!values.TryGetValue(key, out var e) || e.Origin == CommandLine || appliesTo.Contains(kind)) continue;
                if (e.Node is YamlScalarNode s && (s.Value is null or "" or "~" or "null" or "0" or "0.0" or "false")) continue;
                values.Remove(key);
                var option = name.Where[..name.Where.IndexOf(' ')];
                warn?.Invoke($"{e.Where}: {key}: applies to {string.Join("/", appliesTo.Select(k => k.Name()))} only; ignored where {option} sets optimizer.name to another optimizer");
            }
        }

        /// <summary>
        /// <c>data.root: sample</c>: the folder of the MNIST sample packaged with the tool, for the datasets it carries a
        /// sample of (MNIST only); anything else, or an install that lacks it, is refused naming the key.
        /// </summary>
        string SampleRoot(ResnetMnist.Data.DatasetSpec dataset)
        {
            if (dataset != ResnetMnist.Data.DatasetSpecs.Mnist)
                throw Bad("data.root", $"'{ResnetMnist.Data.PackagedFiles.Sample}' (the packaged MNIST sample) is only for data.dataset mnist, but data.dataset is {dataset.Name}; allowed: a folder holding {dataset.Name} (run {ToolCommand.Name} data fetch for it)");
            return ResnetMnist.Data.PackagedFiles.SampleRoot
                ?? throw Bad("data.root", $"'{ResnetMnist.Data.PackagedFiles.Sample}': this install lacks the packaged MNIST sample (a damaged install; reinstall the tool); allowed: a folder holding MNIST");
        }

        /// <summary>One key's value: by its kind, else by its type; its default when absent or null.</summary>
        object? Read(ConfigKey k, TrainingConfig cfg)
        {
            var a = k.Attr;
            switch (a.Kind)
            {
                case KeyKind.Threads: return Threads();
                case KeyKind.Path: return k.Default is null && Scalar(k.Path) is null ? null : PathValue(k.Path, (string?)k.Default ?? "");
                case KeyKind.Pretrained: return Pretrained(cfg.Model.Arch);
            }
            if (k.Type == typeof(IReadOnlyList<string>)) return ChoiceList(k.Path, k.Names!);
            if (k.Type == typeof(IReadOnlyList<double>)) return NumberList(k);
            var t = k.ValueType;
            if (k.Names is { } names)
            {
                var name = Choice(k.Path, k.Default is Enum e ? e.Name() : k.Default!.ToString()!, names);
                return t.IsEnum ? ConfigNames.Parse(t, name) : t == typeof(string) ? name : ConfigSchema.Resolve(k, name);
            }
            if (t == typeof(bool)) return Bool(k.Path, (bool)k.Default!);
            if (t == typeof(long)) return Long(k.Path, (long)k.Default!);
            if (t == typeof(int))
            {
                int min = double.IsNaN(a.Min) ? int.MinValue : (int)a.Min, max = double.IsNaN(a.Max) ? int.MaxValue : (int)a.Max;
                return k.IsNullable ? NullableInt(k.Path, min) : Int(k.Path, (int)k.Default!, min, max);
            }
            if (t == typeof(double))
            {
                double min = double.IsNaN(a.Min) ? double.NegativeInfinity : a.Min, max = double.IsNaN(a.Max) ? double.PositiveInfinity : a.Max;
                if (k.IsNullable && Scalar(k.Path) is null) return null;
                return Double(k.Path, k.IsNullable ? 0 : (double)k.Default!, min, a.MinExclusive, max, a.MaxExclusive);
            }
            throw new NotSupportedException($"config key {k.Path}: no reader for {k.Type.Name}");
        }

        ConfigException Bad(string key, string what) =>
            new($"{(values.TryGetValue(key, out var e) ? e.Where : "<config>")}: {key}: {what}");

        string? Scalar(string key)
        {
            if (!values.TryGetValue(key, out var e)) return null;
            if (e.Node is not YamlScalarNode s) throw Bad(key, "expected a single value, found a " + (e.Node is YamlSequenceNode ? "list" : "mapping"));
            return s.Style is ScalarStyle.Plain && s.Value is "~" or "null" or "" ? null : s.Value;
        }

        long Long(string key, long def)
        {
            var s = Scalar(key);
            if (s is null) return def;
            return long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Bad(key, $"expected an integer, found '{s}'");
        }

        int Int(string key, int def, int min, int max = int.MaxValue)
        {
            var s = Scalar(key);
            if (s is null) return def;
            var allowed = max == int.MaxValue ? $"an integer >= {min}" : $"an integer >= {min} and <= {max}";
            if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) throw Bad(key, $"expected an integer >= {min}, found '{Clip(s)}'; allowed: {allowed}");
            if (v < min) throw Bad(key, $"must be >= {min}, found {v}; allowed: {allowed}");
            if (v > max) throw Bad(key, $"must be <= {max}, found {v}; allowed: {allowed}");
            return (int)v;
        }

        int? NullableInt(string key, int min)
        {
            var s = Scalar(key);
            if (s is null) return null;
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) throw Bad(key, $"expected an integer >= {min} or null, found '{s}'");
            return v >= min ? v : throw Bad(key, $"must be >= {min} or null, found {v}; allowed: an integer >= {min}, or null");
        }

        double Double(string key, double def, double min = double.NegativeInfinity, bool minExclusive = false,
            double max = double.PositiveInfinity, bool maxExclusive = false)
        {
            var s = Scalar(key);
            if (s is null) return def;
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                throw Bad(key, $"expected a number, found '{s}'");
            bool ok = (minExclusive ? v > min : v >= min) && (maxExclusive ? v < max : v <= max);
            if (!ok)
            {
                var range = $"{(minExclusive ? "(" : "[")}{Fmt(min)}, {Fmt(max)}{(maxExclusive ? ")" : "]")}";
                throw Bad(key, $"must be in {range}, found {s}; allowed: a number in {range}");
            }
            return v;
        }

        static string Fmt(double d) => double.IsInfinity(d) ? (d > 0 ? "inf" : "-inf") : d.ToString(CultureInfo.InvariantCulture);

        bool Bool(string key, bool def)
        {
            var s = Scalar(key);
            if (s is null) return def;
            return s.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => throw Bad(key, $"expected true or false, found '{s}'"),
            };
        }

        string Choice(string key, string def, IReadOnlyList<string> allowed)
        {
            var s = Scalar(key);
            if (s is null) return def;
            var v = s.ToLowerInvariant();
            if (allowed.Contains(v)) return v;
            throw Bad(key, $"'{s}' is not allowed{DidYouMean.Hint(allowed, v)}; allowed: {string.Join(", ", allowed)}");
        }

        List<string> ChoiceList(string key, IReadOnlyList<string> allowed)
        {
            if (!values.TryGetValue(key, out var e)) return [];
            IEnumerable<YamlNode> items = e.Node switch
            {
                YamlSequenceNode seq => seq.Children,
                YamlScalarNode { Value: null or "" or "~" or "null" or "[]" } => [],
                YamlScalarNode s => [s],
                _ => throw Bad(key, "expected a list"),
            };
            var list = new List<string>();
            foreach (var item in items)
            {
                var v = (item as YamlScalarNode)?.Value ?? throw Bad(key, "expected a list of names");
                if (!allowed.Contains(v)) throw Bad(key, $"'{v}' is not allowed; allowed: {string.Join(", ", allowed)}");
                list.Add(v);
            }
            return list;
        }

        int Threads()
        {
            var s = Scalar("threads");
            if (s is null || s == "auto") return 0;
            int max = Environment.ProcessorCount * ThreadsPerCore;
            if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 1)
                throw Bad("threads", $"expected auto or an integer from 1 to {max}, found '{Clip(s)}'");
            return v <= max ? (int)v
                : throw Bad("threads", $"must be <= {max} ({ThreadsPerCore} × the {Environment.ProcessorCount} cores), found {v}; allowed: auto or an integer from 1 to {max}");
        }

        string PathValue(string key, string def)
        {
            var s = Scalar(key) ?? def;
            s = s.StartsWith("~/") ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), s[2..]) : s;
            var origin = values.TryGetValue(key, out var e) && e.Origin == "--set" ? Directory.GetCurrentDirectory() : baseDir;
            return Path.GetFullPath(Path.Combine(origin, s));
        }

        /// <summary><c>model.pretrained</c>, resolved against the architecture already read (<see cref="ResnetMnist.Model.PretrainedChoice.Parse"/>).</summary>
        ResnetMnist.Model.PretrainedChoice Pretrained(ResnetMnist.Model.ArchSpec arch)
        {
            try { return ResnetMnist.Model.PretrainedChoice.Parse(Scalar("model.pretrained"), arch, s => PathValue("model.pretrained", s)); }
            catch (ConfigException e) { throw Bad("model.pretrained", e.Message); }
        }

        List<double> NumberList(ConfigKey k)
        {
            var key = k.Path;
            var interval = ConfigSchema.Interval(k.Attr);
            if (!values.TryGetValue(key, out var e)) return [.. (IReadOnlyList<double>)k.Default!];
            if (e.Node is not YamlSequenceNode seq || (k.Attr.Count > 0 && seq.Children.Count != k.Attr.Count))
                throw Bad(key, $"expected a list of {(k.Attr.Count == 2 ? "two" : k.Attr.Count.ToString(CultureInfo.InvariantCulture))} numbers in {interval}, e.g. {k.Format(k.Default)}");
            var list = new List<double>();
            foreach (var c in seq.Children)
            {
                var v = (c as YamlScalarNode)?.Value;
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !InRange(d, k.Attr)) // NaN fails
                    throw Bad(key, $"each {(key == "optimizer.betas" ? "beta" : "item")} must be a number in {interval}, found '{v}'");
                list.Add(d);
            }
            return list;
        }

        static bool InRange(double d, KeyAttribute a) =>
            (double.IsNaN(a.Min) || (a.MinExclusive ? d > a.Min : d >= a.Min)) && (double.IsNaN(a.Max) || (a.MaxExclusive ? d < a.Max : d <= a.Max));
    }
}
