using System.Text.Json;
using Google.Protobuf;
using Onnx;
using ResnetMnist.Data;
using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Export;

/// <summary>
/// Writes a ResNet as a standard ONNX graph for inference (opset 13): Conv, BatchNormalization (the running statistics,
/// eval mode), Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm, in float32, with a dynamic batch axis. Tensor
/// names are the state_dict keys; the input is <c>input</c> (N×C×H×W, the dataset's preprocessing applied) and the
/// output <c>logits</c> (N×classes). The stem and the head are written here, each block by itself
/// (<see cref="ResidualBlock.Emit"/>), module for module. What a user needs besides the graph (class names, the
/// input's normalisation, the source checkpoint) goes into the model's <c>metadata_props</c> (<see cref="Metadata"/>).
/// </summary>
public static class OnnxExport
{
    public const int Opset = 13;
    /// <summary>BatchNorm2d's default epsilon (torchvision's ResNets).</summary>
    const float BnEpsilon = 1e-5f;

    /// <summary>
    /// The <c>metadata_props</c> of an exported model, each value JSON: <c>class_names</c> (a list, one per output,
    /// in label order: the dataset's names, the label number for outputs beyond them), <c>mean</c> and <c>std</c>
    /// (per channel, of 0..1 pixels: what <c>input</c> expects subtracted and divided by; 0 and 1 without
    /// <c>data.normalize</c>), <c>input_size</c> ([C, H, W]) and <c>source_sha256</c> (the exported checkpoint file's
    /// sha256, a string).
    /// </summary>
    /// <param name="numClasses">The model's outputs (<c>model.num_classes</c>).</param>
    /// <param name="sourceSha256">The checkpoint file's sha256, lower-case hex.</param>
    /// <param name="classNames">The names to record (<see cref="ClassNames.For(DatasetSpec, int)"/>); null: the dataset's.</param>
    public static Dictionary<string, string> Metadata(DatasetSpec dataset, bool normalize, int numClasses, string sourceSha256, IReadOnlyList<string>? classNames = null)
    {
        var names = ClassNames.For(classNames ?? dataset.ClassNames, numClasses);
        return new()
        {
            ["class_names"] = JsonSerializer.Serialize(names),
            ["mean"] = JsonSerializer.Serialize(normalize ? dataset.Mean : new double[dataset.Channels]),
            ["std"] = JsonSerializer.Serialize(normalize ? dataset.Std : Enumerable.Repeat(1.0, dataset.Channels)),
            ["input_size"] = JsonSerializer.Serialize(new[] { dataset.Channels, dataset.Height, dataset.Width }),
            ["source_sha256"] = JsonSerializer.Serialize(sourceSha256),
        };
    }

    /// <param name="height">Input height (the dataset's image size), recorded in the input's shape.</param>
    /// <param name="metadata">Written as the model's <c>metadata_props</c>, in order (see <see cref="Metadata"/>); none when null.</param>
    /// <exception cref="ArgumentException">A weight or buffer holds NaN or an infinity: such a model is never written.</exception>
    public static void Write(ResNet model, string path, int height, int width, string producerVersion = "",
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (ResnetMnist.Weights.StateDictChecks.FirstNonFinite(model.state_dict()) is string bad)
            throw new ArgumentException($"{bad} holds NaN or infinite values; an exported model must have finite weights", nameof(model));
        var g = new Graph(model);
        var h = g.Relu(g.Bn(g.Conv("input", "conv1", 7, 2, 3), "bn1"));
        h = g.Node("MaxPool", [h], "maxpool", Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1));
        foreach (var (prefix, block) in model.Blocks())
            h = block.Emit(g, h, prefix);
        h = g.Node("GlobalAveragePool", [h], "avgpool");
        h = g.Node("Flatten", [h], "flatten", Int("axis", 1));
        g.Init("fc.weight");
        g.Init("fc.bias");
        var graph = g.Proto;
        var gemm = new NodeProto { OpType = "Gemm", Name = "fc" };
        gemm.Input.AddRange([h, "fc.weight", "fc.bias"]);
        gemm.Output.Add("logits");
        gemm.Attribute.AddRange([Float("alpha", 1f), Float("beta", 1f), Int("transB", 1)]);
        graph.Node.Add(gemm);

        graph.Input.Add(Value("input", ["batch", model.InChannels, height, width]));
        graph.Output.Add(Value("logits", ["batch", model.NumClasses]));

        var proto = new ModelProto
        {
            IrVersion = 7,
            ProducerName = "resnet-mnist",
            ProducerVersion = producerVersion,
            Graph = graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        AtomicFile.Write(path, proto.WriteTo);
    }

    /// <summary>The graph being written: nodes named <c>{hint}_{n}</c>, each state_dict tensor an initializer once.</summary>
    sealed class Graph(ResNet model) : IGraphBuilder
    {
        readonly Dictionary<string, Tensor> _weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        int _counter;
        public GraphProto Proto { get; } = new() { Name = model.Spec.Name };

        public void Init(string key)
        {
            if (Proto.Initializer.Any(i => i.Name == key)) return;
            using var t = _weights[key].detach().cpu().to_type(ScalarType.Float32).contiguous();
            var proto = new TensorProto { Name = key, DataType = (int)TensorProto.Types.DataType.Float };
            proto.Dims.AddRange(t.shape);
            proto.RawData = ByteString.CopyFrom(t.bytes.ToArray());
            Proto.Initializer.Add(proto);
        }

        public string Node(string op, string[] inputs, string hint, params AttributeProto[] attributes)
        {
            var output = $"{hint}_{_counter++}";
            var node = new NodeProto { OpType = op, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            Proto.Node.Add(node);
            return output;
        }

        public string Conv(string x, string prefix, int kernel, int stride, int pad, int groups = 1)
        {
            Init(prefix + ".weight");
            return Node("Conv", [x, prefix + ".weight"], prefix, Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride),
                Ints("pads", pad, pad, pad, pad), Ints("dilations", 1, 1), Int("group", groups));
        }

        public string Bn(string x, string prefix)
        {
            foreach (var s in new[] { "weight", "bias", "running_mean", "running_var" }) Init($"{prefix}.{s}");
            return Node("BatchNormalization", [x, prefix + ".weight", prefix + ".bias", prefix + ".running_mean", prefix + ".running_var"], prefix,
                Float("epsilon", BnEpsilon), Float("momentum", 0.9f));
        }

        public string Relu(string x) => Node("Relu", [x], "relu");

        public string Add(string a, string b, string name) => Node("Add", [a, b], name);
    }

    static ValueInfoProto Value(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string p ? new TensorShapeProto.Types.Dimension { DimParam = p } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
}
