using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ResnetMnist.Config;

/// <summary>
/// The one place that reads configs: YAML file + <c>--set key.path=value</c> overrides (overrides win) →
/// a validated <see cref="TrainingConfig"/>, or a <see cref="ConfigException"/> naming file, line, column, key
/// and what is allowed. Relative paths resolve against the config file's folder.
/// </summary>
public static class ConfigLoader
{
    public static readonly string[] Devices = ["auto", "cpu", "cuda"];
    public static readonly string[] Datasets = ["mnist", "fashion-mnist"];
    public static readonly string[] Dtypes = ["float32", "float64"];
    public static readonly string[] Optimizers = ["sgd", "adam", "adamw"];
    public static readonly string[] Schedulers = ["none", "step", "cosine", "onecycle"];
    public static readonly string[] Conv1Inits = ["random", "sum-rgb", "mean-rgb"];
    public static readonly string[] FreezableModules = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"];
    public static readonly string[] PretrainedKeywords = ["none", "torchvision", "mlnet"];

    /// <summary>Every key the config accepts, in the order <see cref="ToYaml"/> writes them.</summary>
    public static readonly string[] Keys =
    [
        "seed", "device", "threads",
        "data.dataset", "data.root", "data.download", "data.train_limit", "data.test_limit", "data.normalize",
        "model.arch", "model.pretrained", "model.in_channels", "model.num_classes", "model.conv1_init", "model.freeze",
        "model.bn_eval", "model.channels_last",
        "train.epochs", "train.batch_size", "train.eval_batch_size", "train.shuffle", "train.dtype", "train.log_every",
        "optimizer.name", "optimizer.lr", "optimizer.momentum", "optimizer.nesterov", "optimizer.weight_decay",
        "optimizer.betas", "optimizer.eps",
        "scheduler.name", "scheduler.step_size", "scheduler.gamma", "scheduler.t_max", "scheduler.eta_min",
        "scheduler.max_lr", "scheduler.pct_start",
    ];

    static readonly HashSet<string> Sections = Keys.Where(k => k.Contains('.')).Select(k => k[..k.IndexOf('.')]).ToHashSet();

    /// <summary>Largest config file accepted (the bundled ones are under 1 KB).</summary>
    public const long MaxConfigBytes = 1L << 20;
    /// <summary>Deepest nesting of YAML mappings and lists accepted (a config needs 2).</summary>
    public const int MaxDepth = 16;
    /// <summary>Largest <c>model.num_classes</c> (labels are bytes; 1000 is ImageNet's fc).</summary>
    public const int MaxClasses = 1000;
    /// <summary>Largest <c>model.in_channels</c>.</summary>
    public const int MaxInChannels = 64;
    /// <summary>Largest <c>train.batch_size</c> / <c>train.eval_batch_size</c>.</summary>
    public const int MaxBatch = 65_536;
    /// <summary><c>threads</c> may be at most this many times the core count.</summary>
    public const int ThreadsPerCore = 4;

    /// <summary>Reads <paramref name="path"/> and applies <paramref name="overrides"/>.</summary>
    public static TrainingConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        if (Directory.Exists(path)) throw new ConfigException($"{path}: is a directory, expected a YAML config file");
        if (!File.Exists(path)) throw new ConfigException($"{path}: config file not found");
        string text;
        try
        {
            var bytes = ResnetMnist.Data.InputFiles.ReadAllBytes(path, "a YAML config file", MaxConfigBytes, m => new ConfigException($"{path}: {m}"));
            text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException) { throw new ConfigException($"{path}: is not UTF-8 text; expected a YAML config file"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigException($"{path}: cannot read: {e.Message}"); }
        return Parse(text, Path.GetFullPath(path), overrides);
    }

    /// <summary>Parses YAML text; <paramref name="sourcePath"/> names it in errors and anchors relative paths (null: current folder).</summary>
    public static TrainingConfig Parse(string yaml, string? sourcePath, IEnumerable<string>? overrides = null)
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
        foreach (var o in overrides ?? []) ApplyOverride(o, values);

        var baseDir = sourcePath is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(sourcePath)!;
        return new Reader(values, baseDir).Build(sourcePath);
    }

    internal sealed record Entry(YamlNode Node, string Where, string Origin);

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
            if (!Keys.Contains(name)) throw Unknown(name, At(file, k));
            values[name] = new Entry(v, At(file, v), file);
        }
    }

    static void ApplyOverride(string o, Dictionary<string, Entry> values)
    {
        int eq = o.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"--set {o}: expected key.path=value (for example --set optimizer.lr=0.01)");
        var key = o[..eq].Trim();
        var text = o[(eq + 1)..];
        if (!Keys.Contains(key)) throw Unknown(key, $"--set {o}");
        YamlNode node;
        try
        {
            CheckShape(text, $"--set {Clip(o)}");
            var s = new YamlStream();
            s.Load(new StringReader(text.Length == 0 ? "null" : text));
            node = s.Documents.Count == 0 ? new YamlScalarNode("null") : s.Documents[0].RootNode;
        }
        catch (YamlException e) { throw new ConfigException($"--set {Clip(o)}: value is not valid YAML: {Trim(e.Message)}"); }
        values[key] = new Entry(node, $"--set {o}", "--set");
    }

    static ConfigException Unknown(string key, string where)
    {
        var best = Keys.Concat(Sections).Select(k => (k, d: Distance(key, k))).Concat(Keys.Select(k => (k, d: Distance(key, k[(k.IndexOf('.') + 1)..]) + 1)))
            .OrderBy(t => t.d).First();
        var hint = best.d <= Math.Max(2, key.Length / 3) ? $" (did you mean '{best.k}'?)" : "";
        return new ConfigException($"{where}: unknown key '{key}'{hint}; see the README's configuration reference for every key");
    }

    /// <summary>Levenshtein distance (for did-you-mean suggestions).</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Typed access to the flattened entries, with range checks and precise errors.</summary>
    sealed class Reader(Dictionary<string, Entry> values, string baseDir)
    {
        public TrainingConfig Build(string? source)
        {
            var optName = Choice("optimizer.name", "adam", Optimizers);
            var epochs = Int("train.epochs", 10, min: 1);
            var cfg = new TrainingConfig
            {
                SourcePath = source,
                Seed = Long("seed", 0),
                Device = Choice("device", "auto", Devices),
                Threads = Threads(),
                Data = new DataConfig
                {
                    Dataset = Choice("data.dataset", "mnist", Datasets),
                    Root = PathValue("data.root", "data"),
                    Download = Bool("data.download", false),
                    TrainLimit = NullableInt("data.train_limit", min: 1),
                    TestLimit = NullableInt("data.test_limit", min: 1),
                    Normalize = Bool("data.normalize", false),
                },
                Model = new ModelConfig
                {
                    Arch = Choice("model.arch", "resnet18", ResnetMnist.Model.Models.Architectures),
                    Pretrained = Pretrained(),
                    InChannels = Int("model.in_channels", 1, min: 1, max: MaxInChannels),
                    NumClasses = Int("model.num_classes", 10, min: 2, max: MaxClasses),
                    Conv1Init = Choice("model.conv1_init", "random", Conv1Inits),
                    Freeze = ChoiceList("model.freeze", FreezableModules),
                    BnEval = Bool("model.bn_eval", false),
                    ChannelsLast = Bool("model.channels_last", false),
                },
                Train = new TrainConfig
                {
                    Epochs = epochs,
                    BatchSize = Int("train.batch_size", 64, min: 1, max: MaxBatch),
                    EvalBatchSize = Int("train.eval_batch_size", 256, min: 1, max: MaxBatch),
                    Shuffle = Bool("train.shuffle", true),
                    Dtype = Choice("train.dtype", "float32", Dtypes),
                    LogEvery = Double("train.log_every", 10, min: 0, minExclusive: true),
                },
                Optimizer = new OptimizerConfig
                {
                    Name = optName,
                    Lr = Double("optimizer.lr", 1e-3, min: 0, minExclusive: true),
                    Momentum = Double("optimizer.momentum", 0, min: 0, max: 1, maxExclusive: true),
                    Nesterov = Bool("optimizer.nesterov", false),
                    WeightDecay = Double("optimizer.weight_decay", optName == "adamw" ? 0.01 : 0, min: 0),
                    Betas = Betas(),
                    Eps = Double("optimizer.eps", 1e-8, min: 0, minExclusive: true),
                },
                Scheduler = new SchedulerConfig
                {
                    Name = Choice("scheduler.name", "none", Schedulers),
                    StepSize = Int("scheduler.step_size", 3, min: 1),
                    Gamma = Double("scheduler.gamma", 0.1, min: 0, minExclusive: true, max: 1),
                    TMax = NullableInt("scheduler.t_max", min: 1),
                    EtaMin = Double("scheduler.eta_min", 0, min: 0),
                    MaxLr = NullableDouble("scheduler.max_lr"),
                    PctStart = Double("scheduler.pct_start", 0.3, min: 0, minExclusive: true, max: 1, maxExclusive: true),
                },
            };
            if (cfg.Optimizer.Nesterov && (cfg.Optimizer.Name != "sgd" || cfg.Optimizer.Momentum <= 0))
                throw Bad("optimizer.nesterov", "needs optimizer.name: sgd and optimizer.momentum > 0");
            if (cfg.Optimizer.Momentum > 0 && cfg.Optimizer.Name != "sgd")
                throw Bad("optimizer.momentum", $"applies to sgd only (optimizer.name is {cfg.Optimizer.Name}; use optimizer.betas)");
            if (cfg.Scheduler.MaxLr is <= 0) throw Bad("scheduler.max_lr", "must be > 0");
            return cfg;
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

        double? NullableDouble(string key)
        {
            var s = Scalar(key);
            if (s is null) return null;
            return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : throw Bad(key, $"expected a number or null, found '{s}'");
        }

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

        string Choice(string key, string def, string[] allowed)
        {
            var s = Scalar(key);
            if (s is null) return def;
            var v = s.ToLowerInvariant();
            if (allowed.Contains(v)) return v;
            var near = allowed.OrderBy(a => Distance(a, v)).First();
            var hint = Distance(near, v) <= 2 ? $" (did you mean '{near}'?)" : "";
            throw Bad(key, $"'{s}' is not allowed{hint}; allowed: {string.Join(", ", allowed)}");
        }

        List<string> ChoiceList(string key, string[] allowed)
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
                if (!allowed.Contains(v)) throw Bad(key, $"'{v}' is not a module that can be frozen; allowed: {string.Join(", ", allowed)}");
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

        string Pretrained()
        {
            var s = Scalar("model.pretrained");
            if (s is null || s.Equals("false", StringComparison.OrdinalIgnoreCase)) return "none";
            if (PretrainedKeywords.Contains(s.ToLowerInvariant())) return s.ToLowerInvariant();
            if (s.EndsWith(".pth") || s.EndsWith(".pt") || s.EndsWith(".safetensors") || s.Contains('/'))
                return PathValue("model.pretrained", s);
            throw Bad("model.pretrained", $"'{s}' is not allowed; allowed: none, torchvision, mlnet, or a path to a .pth/.safetensors file");
        }

        List<double> Betas()
        {
            if (!values.TryGetValue("optimizer.betas", out var e)) return [0.9, 0.999];
            if (e.Node is not YamlSequenceNode seq || seq.Children.Count != 2)
                throw Bad("optimizer.betas", "expected a list of two numbers in [0, 1), e.g. [0.9, 0.999]");
            var list = new List<double>();
            foreach (var c in seq.Children)
            {
                var v = (c as YamlScalarNode)?.Value;
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !(d >= 0 && d < 1)) // NaN fails both
                    throw Bad("optimizer.betas", $"each beta must be a number in [0, 1), found '{v}'");
                list.Add(d);
            }
            return list;
        }
    }

    /// <summary>The resolved config as YAML (every key, defaults included): what <c>config show</c> prints and runs save.</summary>
    public static string ToYaml(TrainingConfig c)
    {
        static string N(double? d) => d is null ? "null" : d.Value.ToString("R", CultureInfo.InvariantCulture);
        static string I(int? i) => i is null ? "null" : i.Value.ToString(CultureInfo.InvariantCulture);
        static string B(bool b) => b ? "true" : "false";
        static string Q(string s) => "'" + s.Replace("'", "''") + "'";
        var w = new StringWriter { NewLine = "\n" };
        w.WriteLine($"seed: {c.Seed}");
        w.WriteLine($"device: {c.Device}");
        w.WriteLine($"threads: {(c.Threads == 0 ? "auto" : I(c.Threads))}");
        w.WriteLine("data:");
        w.WriteLine($"  dataset: {c.Data.Dataset}");
        w.WriteLine($"  root: {Q(c.Data.Root)}");
        w.WriteLine($"  download: {B(c.Data.Download)}");
        w.WriteLine($"  train_limit: {I(c.Data.TrainLimit)}");
        w.WriteLine($"  test_limit: {I(c.Data.TestLimit)}");
        w.WriteLine($"  normalize: {B(c.Data.Normalize)}");
        w.WriteLine("model:");
        w.WriteLine($"  arch: {c.Model.Arch}");
        w.WriteLine($"  pretrained: {Q(c.Model.Pretrained)}");
        w.WriteLine($"  in_channels: {c.Model.InChannels}");
        w.WriteLine($"  num_classes: {c.Model.NumClasses}");
        w.WriteLine($"  conv1_init: {c.Model.Conv1Init}");
        w.WriteLine($"  freeze: [{string.Join(", ", c.Model.Freeze)}]");
        w.WriteLine($"  bn_eval: {B(c.Model.BnEval)}");
        w.WriteLine($"  channels_last: {B(c.Model.ChannelsLast)}");
        w.WriteLine("train:");
        w.WriteLine($"  epochs: {c.Train.Epochs}");
        w.WriteLine($"  batch_size: {c.Train.BatchSize}");
        w.WriteLine($"  eval_batch_size: {c.Train.EvalBatchSize}");
        w.WriteLine($"  shuffle: {B(c.Train.Shuffle)}");
        w.WriteLine($"  dtype: {c.Train.Dtype}");
        w.WriteLine($"  log_every: {N(c.Train.LogEvery)}");
        w.WriteLine("optimizer:");
        w.WriteLine($"  name: {c.Optimizer.Name}");
        w.WriteLine($"  lr: {N(c.Optimizer.Lr)}");
        w.WriteLine($"  momentum: {N(c.Optimizer.Momentum)}");
        w.WriteLine($"  nesterov: {B(c.Optimizer.Nesterov)}");
        w.WriteLine($"  weight_decay: {N(c.Optimizer.WeightDecay)}");
        w.WriteLine($"  betas: [{string.Join(", ", c.Optimizer.Betas.Select(b => N(b)))}]");
        w.WriteLine($"  eps: {N(c.Optimizer.Eps)}");
        w.WriteLine("scheduler:");
        w.WriteLine($"  name: {c.Scheduler.Name}");
        w.WriteLine($"  step_size: {c.Scheduler.StepSize}");
        w.WriteLine($"  gamma: {N(c.Scheduler.Gamma)}");
        w.WriteLine($"  t_max: {I(c.Scheduler.TMax)}");
        w.WriteLine($"  eta_min: {N(c.Scheduler.EtaMin)}");
        w.WriteLine($"  max_lr: {N(c.Scheduler.MaxLr)}");
        w.WriteLine($"  pct_start: {N(c.Scheduler.PctStart)}");
        return w.ToString();
    }
}
