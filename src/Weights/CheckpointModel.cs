using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using ResnetMnist.Data;
using ResnetMnist.Model;

namespace ResnetMnist.Weights;

/// <summary>
/// The model a checkpoint belongs to, recorded with it so that a <c>.pt</c> copied out of its run still says what
/// it is. The tool writes it twice: in the state_dict's pickle metadata (<c>state_dict._metadata["resnet_mnist"]</c>,
/// a dict of str/int values that PyTorch's <c>load_state_dict</c> never looks up, since it reads only module
/// prefixes there) and as the <c>model</c> field of the companion JSON (<c>last.json</c>, <c>best.json</c>).
/// </summary>
/// <param name="Arch">model.arch (<see cref="ArchSpecs.Names"/>).</param>
/// <param name="InChannels">model.in_channels.</param>
/// <param name="NumClasses">model.num_classes.</param>
/// <param name="Dataset">data.dataset (<see cref="DatasetSpecs.Names"/>).</param>
/// <param name="ToolVersion">Version of the tool that wrote it.</param>
public sealed record CheckpointModel(string Arch, int InChannels, int NumClasses, string Dataset, string ToolVersion)
{
    /// <summary>The key under <c>_metadata</c>: not a module prefix, so <c>load_state_dict</c> ignores it.</summary>
    public const string MetadataKey = "resnet_mnist";

    /// <summary>Version of this library (the tool's version).</summary>
    public static string CurrentVersion =>
        typeof(CheckpointModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>The <c>--set</c> overrides that configure this model (and its dataset).</summary>
    public IEnumerable<string> Overrides() =>
        [$"model.arch={Arch}", $"model.in_channels={InChannels}", $"model.num_classes={NumClasses}", $"data.dataset={Dataset}"];

    /// <summary>A one-line description: <c>resnet34, in_channels 3, num_classes 10, dataset cifar10</c>.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Arch}, in_channels {InChannels}, num_classes {NumClasses}, dataset {Dataset}{(!string.IsNullOrEmpty(ToolVersion) ? $", written by resnet-mnist {ToolVersion}" : "")}");

    /// <summary>
    /// The first key where <paramref name="configured"/> (the model a config trains: <c>TrainingConfig.ModelRecord</c>)
    /// is another model than this one (arch, in_channels, num_classes), with both values; null when they agree.
    /// </summary>
    public (string Key, string Configured, string Recorded)? Contradiction(CheckpointModel configured)
    {
        if (configured.Arch != Arch) return ("model.arch", configured.Arch, Arch);
        if (configured.InChannels != InChannels) return ("model.in_channels", configured.InChannels.ToString(CultureInfo.InvariantCulture), InChannels.ToString(CultureInfo.InvariantCulture));
        if (configured.NumClasses != NumClasses) return ("model.num_classes", configured.NumClasses.ToString(CultureInfo.InvariantCulture), NumClasses.ToString(CultureInfo.InvariantCulture));
        return null;
    }

    /// <summary>Longest <c>tool_version</c> accepted.</summary>
    public const int MaxToolVersionChars = 64;

    /// <summary>
    /// Checks every field against what a config allows (the bounds of <c>model.in_channels</c> and
    /// <c>model.num_classes</c>, the architectures and datasets there are, the dataset's channels) and
    /// <c>tool_version</c> against what a version looks like; returns the problem (<c>field: value; allowed: ...</c>)
    /// or null. A record is read from a file, so a forged one is refused here rather than shown or configured.
    /// </summary>
    public string? Problem()
    {
        if (Arch is null || !ArchSpecs.Names.Contains(Arch)) return $"arch: '{Clip(Arch)}'; allowed: {string.Join(", ", ArchSpecs.Names)}";
        if (OutOfBounds("model.in_channels", InChannels, ResNetBounds.MinInChannels, ResNetBounds.MaxInChannels) is string inBounds) return $"in_channels: {InChannels}; allowed: {inBounds}";
        if (OutOfBounds("model.num_classes", NumClasses, ResNetBounds.MinClasses, ResNetBounds.MaxClasses) is string classBounds) return $"num_classes: {NumClasses}; allowed: {classBounds}";
        if (Dataset is null || !DatasetSpecs.Names.Contains(Dataset)) return $"dataset: '{Clip(Dataset)}'; allowed: {string.Join(", ", DatasetSpecs.Names)}";
        if (DatasetSpecs.Get(Dataset).Channels is var channels && channels != InChannels)
            return $"in_channels: {InChannels}, but dataset {Dataset} has {channels}-channel images; allowed: {channels}";
        if (ToolVersion is { Length: > MaxToolVersionChars })
            return $"tool_version: longer than {MaxToolVersionChars} characters; allowed: a version such as {CurrentVersion}";
        if (ToolVersion is { } v && !v.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '+' or '_'))
            return $"tool_version: '{Clip(v)}' holds characters a version does not; allowed: letters, digits, '.', '-', '+', '_' (such as {CurrentVersion})";
        return null;
    }

    /// <summary>"2 to 1000 (as model.num_classes)" when <paramref name="value"/> is outside the key's bounds; null inside them.</summary>
    static string? OutOfBounds(string key, int value, int min, int max) =>
        value < min || value > max ? string.Create(CultureInfo.InvariantCulture, $"{min} to {max} (as {key})") : null;

    static string Clip(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "..." : s;

    // ---- the pickle metadata ----

    /// <summary>
    /// Reads the record from a torch.save archive's metadata; null when it has none. A record that is there but
    /// malformed is a <see cref="WeightsFileException"/>.
    /// </summary>
    public static CheckpointModel? FromArchive(TorchArchive archive)
    {
        if (archive.Summary.Metadata is not { } md || !md.TryGetValue(MetadataKey, out var f)) return null;
        string Str(string k) => f.TryGetValue(k, out var v) && v is string s ? s
            : throw new WeightsFileException(archive.Path, $"_metadata[\"{MetadataKey}\"][\"{k}\"] is missing or not a string");
        int Int(string k) => f.TryGetValue(k, out var v) && v is long n && n is >= int.MinValue and <= int.MaxValue ? (int)n
            : throw new WeightsFileException(archive.Path, $"_metadata[\"{MetadataKey}\"][\"{k}\"] is missing or not an integer");
        var m = new CheckpointModel(Str("arch"), Int("in_channels"), Int("num_classes"), Str("dataset"),
            f.TryGetValue("tool_version", out var tv) && tv is string version ? version : "");
        if (m.Problem() is string p) throw new WeightsFileException(archive.Path, $"_metadata[\"{MetadataKey}\"]: {p}");
        return m;
    }

    /// <summary>
    /// Adds this record to a state_dict archive written by PyBridge's <c>PickleStateDict</c>: its root becomes an
    /// <c>OrderedDict</c> (as <c>torch.save(model.state_dict())</c> writes it) that a BUILD gives
    /// <c>{'_metadata': OrderedDict({'resnet_mnist': {...}})}</c>, exactly how PyTorch pickles
    /// <c>state_dict._metadata</c>. The entries keep their names and order and are written stored (uncompressed).
    /// </summary>
    public byte[] Embed(byte[] zip)
    {
        using var output = new MemoryStream();
        Embed(new MemoryStream(zip, writable: false), output);
        return output.ToArray();
    }

    /// <summary>As <see cref="Embed(byte[])"/>, from a seekable stream to a stream: the tensors' entries are copied through, only <c>data.pkl</c> is held in memory.</summary>
    public void Embed(Stream zip, Stream output)
    {
        using var input = new ZipArchive(zip, ZipArchiveMode.Read, leaveOpen: true);
        bool done = false;
        using (var outZip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var entry in input.Entries)
            {
                var e = outZip.CreateEntry(entry.FullName, CompressionLevel.NoCompression);
                e.LastWriteTime = entry.LastWriteTime;
                using var o = e.Open();
                using var s = entry.Open();
                if (entry.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                {
                    if (done) throw new InvalidOperationException("the state_dict archive holds two data.pkl");
                    using var ms = new MemoryStream();
                    s.CopyTo(ms);
                    o.Write(EmbedInPickle(ms.ToArray()));
                    done = true;
                }
                else s.CopyTo(o);
            }
        if (!done) throw new InvalidOperationException("the state_dict archive holds no data.pkl");
    }

    /// <summary>
    /// The pickle with the metadata: PyBridge writes <c>PROTO 2, EMPTY_DICT, ..., STOP</c> (no frames, so bytes
    /// can be inserted); the root becomes <c>collections.OrderedDict()</c> and the BUILD goes before STOP.
    /// </summary>
    byte[] EmbedInPickle(byte[] pickle)
    {
        if (pickle.Length < 4 || pickle[0] != 0x80 || pickle[1] != 2 || pickle[2] != (byte)'}' || pickle[^1] != (byte)'.')
            throw new InvalidOperationException("unexpected state_dict pickle layout (expected PROTO 2, EMPTY_DICT ... STOP)");
        var o = new MemoryStream();
        void Op(char c) => o.WriteByte((byte)c);
        void Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)b.Length);
            Op('X'); o.Write(n); o.Write(b);                                   // BINUNICODE
        }
        void Int(int v)
        {
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, v);
            Op('J'); o.Write(n);                                               // BININT
        }
        void OrderedDict() { o.Write("ccollections\nOrderedDict\n"u8); Op(')'); Op('R'); } // GLOBAL, EMPTY_TUPLE, REDUCE

        o.Write(pickle.AsSpan(0, 2));                                          // PROTO 2
        OrderedDict();                                                         // the root, instead of EMPTY_DICT
        o.Write(pickle.AsSpan(3, pickle.Length - 4));                          // its items, unchanged
        Op('}');                                                               // BUILD state: {'_metadata': ...}
        Str("_metadata");
        OrderedDict();
        Str(MetadataKey);
        Op('}'); Op('(');
        Str("arch"); Str(Arch);
        Str("in_channels"); Int(InChannels);
        Str("num_classes"); Int(NumClasses);
        Str("dataset"); Str(Dataset);
        Str("tool_version"); Str(ToolVersion ?? "");
        Op('u');                                                               // SETITEMS into {'arch': ...}
        Op('s');                                                               // _metadata['resnet_mnist'] = ...
        Op('s');                                                               // state['_metadata'] = ...
        Op('b');                                                               // BUILD
        Op('.');                                                               // STOP
        return o.ToArray();
    }

    // ---- the companion JSON ----

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Largest companion JSON read (<c>last.json</c> is about 2 KB plus ~250 bytes per epoch of history).</summary>
    public const long MaxJsonBytes = 16L << 20;

    /// <summary>The companion JSON of <paramref name="pt"/>: the same name with <c>.json</c> (<c>best.pt</c> → <c>best.json</c>).</summary>
    public static string CompanionJson(string pt) => Path.ChangeExtension(pt, ".json");

    /// <summary>
    /// The <c>model</c> field of <paramref name="json"/> (<c>last.json</c>, <c>best.json</c>); null when the file or the
    /// field is missing. A field that is there but malformed is a <see cref="WeightsFileException"/>.
    /// </summary>
    public static CheckpointModel? FromCompanionJson(string json)
    {
        if (!File.Exists(json)) return null;
        var bytes = InputFiles.ReadAllBytes(json, "a checkpoint's JSON", MaxJsonBytes, m => new WeightsFileException(json, m));
        CheckpointModel? m;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("model", out var model)
                || model.ValueKind == JsonValueKind.Null) return null;
            m = model.Deserialize<CheckpointModel>(Json);
        }
        catch (JsonException e) { throw new WeightsFileException(json, $"corrupt model record ({TorchArchive.FirstLine(e.Message)})"); }
        if (m is null) return null;
        m = m with { ToolVersion = m.ToolVersion ?? "" };
        if (m.Problem() is string p) throw new WeightsFileException(json, $"model.{p}");
        return m;
    }

    /// <summary>
    /// The model recorded for <paramref name="path"/>: its own metadata first (a torch.save zip), else the companion
    /// JSON beside it; null when neither records one. <c>Source</c> names where it was found.
    /// </summary>
    public static (CheckpointModel Model, string Source)? Find(string path)
    {
        if (WeightsFile.DetectFormat(path) == WeightsFormat.TorchZip && FromArchive(TorchArchive.Read(path)) is { } m)
            return (m, "the file's metadata");
        var json = CompanionJson(path);
        return FromCompanionJson(json) is { } j ? (j, Path.GetFileName(json)) : null;
    }
}
