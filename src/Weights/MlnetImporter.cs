using ResnetMnist.Model;
using System.Reflection;
using Onnx;
using ResnetMnist.Data;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>
/// Converts ML.NET's ImageNet ResNet-18 (NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1, MIT:
/// <c>tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx</c>, a CNTK 2.6 export, opset 8, no fc) into torchvision
/// resnet18's state_dict keys, so that <c>pretrained: mlnet</c> works offline.
/// </summary>
/// <remarks>
/// The graph is read with a protobuf reader (OnnxSharp). Its convolutions are mapped by structure: the 7×7 stem,
/// then per stage (found from the output channels 64/128/256/512) a 1×1 convolution is that stage's
/// <c>downsample.0</c> (it precedes block 0's conv1 in graph order) and the 3×3 ones are the blocks' conv1, conv2 in
/// turn. Each BatchNormalization (eps must be 1e-5) that consumes a convolution gives weight, bias, running_mean and
/// running_var. layer4 has three blocks in that graph: the first two are kept.
/// <para>
/// The model expects <c>ResNetPreprocess.onnx</c>'s input: BGR, 0–255, minus a 3×224×224 mean image. By default the
/// preprocessing is folded into conv1/bn1 so the weights take torchvision-normalised RGB input
/// (<c>(x/255 − mean)/std</c>, mean 0.485/0.456/0.406, std 0.229/0.224/0.225): the kernel's input channels are flipped
/// to RGB and scaled by 255·std, and conv1's response to the constant offset 255·mean − m (m: the mean image's
/// per-channel average) is subtracted from bn1.running_mean. The mean image's spatial variation is what the fold
/// cannot express; <c>foldPreprocessing: false</c> gives the exact mapping (input as the ONNX model sees it).
/// </para>
/// </remarks>
public static class MlnetImporter
{
    /// <summary>NuGet package id holding the ONNX files.</summary>
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    /// <summary>Its version.</summary>
    public const string PackageVersion = "0.23.1";

    static readonly double[] ImagenetMean = [0.485, 0.456, 0.406];
    static readonly double[] ImagenetStd = [0.229, 0.224, 0.225];

    /// <summary>The package file's SHA-512 (nuget.org's, base64): a fetched package must have exactly this.</summary>
    public const string PackageSha512 = "o6r6Vm8nciuxWmfZXpLDSoq49rhsVIWLZMs3Z1fO4+ALDHgtR8m4ApgMF10oRY8S82IEE4S2yavHCPd+mwsxZw==";

    /// <summary>Where the package is, fetched from the configured NuGet sources first when it is not in any cache (an installed tool).</summary>
    public static string FindOrFetchPackageDir(IProgress<(long done, long? total)>? progress = null)
    {
        try { return FindPackageDir(); }
        catch (FileNotFoundException)
        {
            return NuGetFetch.Fetch(PackageId, PackageVersion, PackageSha512, progress: progress);
        }
    }

    /// <summary>
    /// The package's folder, looked up in this order: (1) the global packages folder NuGet resolves from
    /// <paramref name="settingsRoot"/> (default: the current folder) — <c>$NUGET_PACKAGES</c> if set, else the
    /// <c>globalPackagesFolder</c> of the <c>nuget.config</c> chain, else <c>~/.nuget/packages</c>: where
    /// <c>dotnet restore</c> and <see cref="NuGetFetch.Fetch"/> put it; (2) <c>~/.nuget/packages</c>, when (1) is
    /// another folder; (3) the folder recorded when the library was built. Throws <see cref="FileNotFoundException"/>
    /// naming every folder looked in when none holds it.
    /// </summary>
    public static string FindPackageDir(string? settingsRoot = null)
    {
        var candidates = new List<string>();
        try
        {
            var settings = NuGet.Configuration.Settings.LoadDefaultSettings(settingsRoot ?? Directory.GetCurrentDirectory());
            candidates.Add(Path.Combine(NuGetFetch.GlobalPackagesFolder(settings), PackageId.ToLowerInvariant(), PackageVersion));
        }
        catch (NuGet.Configuration.NuGetConfigurationException)
        {
            // an unreadable nuget.config: look in the other places (a fetch would report it)
        }
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages",
            PackageId.ToLowerInvariant(), PackageVersion));
        var built = typeof(MlnetImporter).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "DnnImageFeaturizerResNet18Dir")?.Value;
        if (!string.IsNullOrEmpty(built)) candidates.Add(built);
        foreach (var dir in candidates)
            if (File.Exists(Path.Combine(dir, "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"))) return dir;
        throw new FileNotFoundException(
            $"ML.NET's ResNet18.onnx (NuGet {PackageId} {PackageVersion}) is not in the NuGet cache (looked in: {string.Join(", ", candidates.Distinct())}). " +
            "It is fetched from the configured NuGet sources when needed; offline, copy the package into the NuGet cache or set NUGET_PACKAGES.");
    }

    /// <summary>Cap on an ONNX file of the package read here: 256 MiB (ResNet18.onnx is 63 MB).</summary>
    const long MaxOnnxBytes = 256L << 20;

    static ModelProto ReadOnnx(string path)
    {
        using var f = InputFiles.OpenRead(path, "an ONNX model", MaxOnnxBytes, m => new WeightsFileException(path, m));
        return ModelProto.Parser.ParseFrom(f);
    }

    /// <summary>Path of <c>ResNet18.onnx</c>.</summary>
    public static string OnnxModelPath() => Path.Combine(FindOrFetchPackageDir(), "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
    /// <summary>Path of <c>ResNetPreprocess.onnx</c>.</summary>
    public static string PreprocessModelPath() => Path.Combine(FindOrFetchPackageDir(), "tools", "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>Cache folder of converted files: <c>$XDG_CACHE_HOME/resnet-mnist/weights</c> (default <c>~/.cache/…</c>).</summary>
    public static string CacheDir()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var cache = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
        return Path.Combine(cache, "resnet-mnist", "weights");
    }

    /// <summary>The cached <c>.pth</c> of an earlier conversion (with its <c>.safetensors</c> twin), or null when there is none.</summary>
    public static string? Converted(bool foldPreprocessing = true, string? cacheDir = null)
    {
        var stem = Path.Combine(cacheDir ?? CacheDir(), foldPreprocessing ? "resnet18-mlnet" : "resnet18-mlnet-unfolded");
        return File.Exists(stem + ".pth") && File.Exists(stem + ".safetensors") ? stem + ".pth" : null;
    }

    /// <summary>
    /// Returns the cached <c>resnet18-mlnet.pth</c> (folded) or <c>resnet18-mlnet-unfolded.pth</c>, converting first
    /// (and writing the <c>.safetensors</c> twin) when absent. Files are written to temporary names and renamed.
    /// </summary>
    public static string EnsureConverted(bool foldPreprocessing = true, string? cacheDir = null)
    {
        cacheDir ??= CacheDir();
        if (Converted(foldPreprocessing, cacheDir) is string cached) return cached;
        var stem = Path.Combine(cacheDir, foldPreprocessing ? "resnet18-mlnet" : "resnet18-mlnet-unfolded");
        string pth = stem + ".pth", st = stem + ".safetensors";
        Directory.CreateDirectory(cacheDir);
        var sd = Convert(foldPreprocessing);
        try
        {
            // .safetensors first: the .pth is what callers look for, so it appears last.
            AtomicFile.Write(st, s => Safetensors.SaveStateDict(s, sd, leaveOpen: true));
            AtomicFile.Write(pth, s => PyTorchPickler.PickleStateDict(s, sd, leaveOpen: true));
        }
        finally { foreach (var t in sd.Values) t.Dispose(); }
        return pth;
    }

    /// <summary>Converts the ONNX model into a state_dict in torchvision's key order (all keys but <c>fc.*</c>), float32.</summary>
    public static Dictionary<string, Tensor> Convert(bool foldPreprocessing = true, string? onnxPath = null, string? preprocessPath = null)
    {
        onnxPath ??= OnnxModelPath();
        var model = ReadOnnx(onnxPath);
        var g = model.Graph;
        var init = g.Initializer.ToDictionary(t => t.Name);
        var byInput = new Dictionary<string, List<NodeProto>>();
        foreach (var n in g.Node)
            foreach (var i in n.Input)
                (byInput.TryGetValue(i, out var l) ? l : byInput[i] = []).Add(n);

        var raw = new Dictionary<string, Tensor>();
        var convs = g.Node.Where(n => n.OpType == "Conv").ToList();
        if (convs.Count == 0 || Dims(init[convs[0].Input[1]])[2] != 7)
            throw new InvalidDataException($"{onnxPath}: first convolution is not the 7×7 stem");

        void AddConvBn(NodeProto conv, string convKey, string bnPrefix)
        {
            if (conv.Input.Count > 2) throw new InvalidDataException($"{onnxPath}: {conv.Name} has a bias; torchvision's convs have none");
            raw[convKey] = ToTensor(init[conv.Input[1]]);
            var bn = byInput[conv.Output[0]].SingleOrDefault(n => n.OpType == "BatchNormalization")
                ?? throw new InvalidDataException($"{onnxPath}: {conv.Name} is not followed by a BatchNormalization");
            var eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            if (Math.Abs(eps - 1e-5f) > 1e-9f) throw new InvalidDataException($"{onnxPath}: {bn.Name} has eps {eps}, torchvision uses 1e-5");
            raw[$"{bnPrefix}.weight"] = ToTensor(init[bn.Input[1]]);
            raw[$"{bnPrefix}.bias"] = ToTensor(init[bn.Input[2]]);
            raw[$"{bnPrefix}.running_mean"] = ToTensor(init[bn.Input[3]]);
            raw[$"{bnPrefix}.running_var"] = ToTensor(init[bn.Input[4]]);
            raw[$"{bnPrefix}.num_batches_tracked"] = tensor(0L);
        }

        AddConvBn(convs[0], "conv1.weight", "bn1");
        long[] planes = [64, 128, 256, 512];
        var k3 = new int[4];
        foreach (var conv in convs.Skip(1))
        {
            var dims = Dims(init[conv.Input[1]]);
            int stage = Array.IndexOf(planes, dims[0]);
            if (stage < 0) throw new InvalidDataException($"{onnxPath}: {conv.Name} has {dims[0]} output channels, not a resnet18 stage");
            if (dims[2] == 1)
            {
                if (k3[stage] != 0) throw new InvalidDataException($"{onnxPath}: {conv.Name}: downsample after the stage's first block");
                AddConvBn(conv, $"layer{stage + 1}.0.downsample.0.weight", $"layer{stage + 1}.0.downsample.1");
                continue;
            }
            int block = k3[stage] / 2, which = k3[stage] % 2 + 1;
            k3[stage]++;
            if (block >= 2) continue;                      // layer4's third block: not part of resnet18
            AddConvBn(conv, $"layer{stage + 1}.{block}.conv{which}.weight", $"layer{stage + 1}.{block}.bn{which}");
        }
        if (k3.Any(c => c < 4)) throw new InvalidDataException($"{onnxPath}: fewer than two blocks in a stage ({string.Join(", ", k3)} 3×3 convs)");

        if (foldPreprocessing) Fold(raw, preprocessPath ?? PreprocessModelPath());

        var result = new Dictionary<string, Tensor>();
        foreach (var (key, shape) in ArchSpecs.Resnet18.StateDictLayout())
        {
            if (key.StartsWith("fc.", StringComparison.Ordinal)) continue;
            if (!raw.Remove(key, out var t)) throw new InvalidDataException($"{onnxPath}: conversion produced no {key}");
            if (!t.shape.SequenceEqual(shape)) throw new InvalidDataException($"{onnxPath}: {key} has shape [{string.Join(", ", t.shape)}]");
            result[key] = t;
        }
        return result;
    }

    /// <summary>Folds ResNetPreprocess.onnx (RGB→BGR, minus the mean image's per-channel average) and ImageNet normalisation into conv1/bn1.</summary>
    static void Fold(Dictionary<string, Tensor> sd, string preprocessPath)
    {
        var prep = ReadOnnx(preprocessPath);
        var meanImage = prep.Graph.Initializer.Single(t => t.Name == "MeanImage");
        using var m = ToTensor(meanImage).to_type(ScalarType.Float64);
        using var mBgr = m.mean([0, 2, 3]);                      // per-channel mean, BGR, 0–255
        using var mRgb = mBgr.flip(0);
        using var mean = tensor(ImagenetMean, ScalarType.Float64);
        using var std = tensor(ImagenetStd, ScalarType.Float64);
        using var w = sd["conv1.weight"].to_type(ScalarType.Float64).flip(1);   // input channels BGR → RGB
        using var scale = (std * 255.0).view(1, 3, 1, 1);
        using var offsetInput = (mean * 255.0 - mRgb).view(1, 3, 1, 1);
        using var offset = (w * offsetInput).sum([1, 2, 3]);    // conv1's response to the constant offset, per output channel
        var wNew = (w * scale).to_type(ScalarType.Float32);
        var rmNew = (sd["bn1.running_mean"].to_type(ScalarType.Float64) - offset).to_type(ScalarType.Float32);
        sd["conv1.weight"].Dispose();
        sd["bn1.running_mean"].Dispose();
        sd["conv1.weight"] = wNew;
        sd["bn1.running_mean"] = rmNew;
    }

    /// <summary>
    /// Output names, in the ONNX graph, of each stage after its second block (the ReLU after the residual Add):
    /// keys layer1..layer4 — layer4's is the node after its second block, not the graph's third.
    /// </summary>
    public static Dictionary<string, string> StageOutputNames(GraphProto g)
    {
        var init = g.Initializer.ToDictionary(t => t.Name);
        var producer = new Dictionary<string, NodeProto>();
        foreach (var n in g.Node) foreach (var o in n.Output) producer[o] = n;
        long[] planes = [64, 128, 256, 512];
        var blocks = new int[4];
        var result = new Dictionary<string, string>();
        foreach (var add in g.Node.Where(n => n.OpType == "Add"))
        {
            var bn = producer[add.Input[0]];
            var conv = producer[bn.Input[0]];
            int stage = Array.IndexOf(planes, Dims(init[conv.Input[1]])[0]);
            var relu = g.Node.Single(n => n.OpType == "Relu" && n.Input[0] == add.Output[0]);
            if (blocks[stage]++ == 1) result[$"layer{stage + 1}"] = relu.Output[0];
        }
        return result;
    }

    static long[] Dims(TensorProto t) => t.Dims.ToArray();

    /// <summary>A float TensorProto (float_data or raw_data) as a float32 tensor.</summary>
    public static Tensor ToTensor(TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"initializer {t.Name} is {(TensorProto.Types.DataType)t.DataType}, expected float");
        float[] data;
        if (t.RawData.Length > 0)
        {
            data = new float[t.RawData.Length / 4];
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).CopyTo(data);
        }
        else data = t.FloatData.ToArray();
        long numel = t.Dims.Aggregate(1L, (a, b) => a * b);
        if (data.Length != numel) throw new InvalidDataException($"initializer {t.Name} holds {data.Length} values for shape [{string.Join(", ", t.Dims)}]");
        return tensor(data, t.Dims.ToArray());
    }
}
