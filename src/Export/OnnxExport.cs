using Google.Protobuf;
using Onnx;
using ResnetMnist.Model;
using static TorchSharp.torch;

namespace ResnetMnist.Export;

/// <summary>
/// Writes a ResNet as a standard ONNX graph for inference (opset 13): Conv, BatchNormalization (the running statistics,
/// eval mode), Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm, in float32, with a dynamic batch axis. Tensor
/// names are the state_dict keys; the input is <c>input</c> (N×C×H×W, the dataset's preprocessing applied) and the
/// output <c>logits</c> (N×classes). The graph is built from the <see cref="ArchSpec"/>, module for module.
/// </summary>
public static class OnnxExport
{
    public const int Opset = 13;
    /// <summary>BatchNorm2d's default epsilon (torchvision's ResNets).</summary>
    const float BnEpsilon = 1e-5f;

    /// <param name="height">Input height (the dataset's image size), recorded in the input's shape.</param>
    /// <exception cref="ArgumentException">A weight or buffer holds NaN or an infinity: such a model is never written.</exception>
    public static void Write(ResNet model, string path, int height, int width, string producerVersion = "")
    {
        if (ResnetMnist.Weights.StateDictChecks.FirstNonFinite(model.state_dict()) is string bad)
            throw new ArgumentException($"{bad} holds NaN or infinite values; an exported model must have finite weights", nameof(model));
        var graph = new GraphProto { Name = model.Spec.Name };
        var weights = new Dictionary<string, Tensor>();
        foreach (var (name, t) in model.state_dict()) weights[name] = t;
        int counter = 0;
        string Fresh(string hint) => $"{hint}_{counter++}";

        void Init(string key)
        {
            if (graph.Initializer.Any(i => i.Name == key)) return;
            using var t = weights[key].detach().cpu().to_type(ScalarType.Float32).contiguous();
            var proto = new TensorProto { Name = key, DataType = (int)TensorProto.Types.DataType.Float };
            proto.Dims.AddRange(t.shape);
            proto.RawData = ByteString.CopyFrom(t.bytes.ToArray());
            graph.Initializer.Add(proto);
        }
        string Node(string op, string[] inputs, string hint, params AttributeProto[] attributes)
        {
            var output = Fresh(hint);
            var node = new NodeProto { OpType = op, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return output;
        }
        string Conv(string x, string prefix, int kernel, int stride, int pad)
        {
            Init(prefix + ".weight");
            return Node("Conv", [x, prefix + ".weight"], prefix, Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride),
                Ints("pads", pad, pad, pad, pad), Ints("dilations", 1, 1), Int("group", 1));
        }
        string Bn(string x, string prefix)
        {
            foreach (var s in new[] { "weight", "bias", "running_mean", "running_var" }) Init($"{prefix}.{s}");
            return Node("BatchNormalization", [x, prefix + ".weight", prefix + ".bias", prefix + ".running_mean", prefix + ".running_var"], prefix,
                Float("epsilon", BnEpsilon), Float("momentum", 0.9f));
        }
        string Relu(string x) => Node("Relu", [x], "relu");

        var spec = model.Spec;
        var h = Relu(Bn(Conv("input", "conv1", 7, 2, 3), "bn1"));
        h = Node("MaxPool", [h], "maxpool", Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1));
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < spec.Layers[s]; b++)
            {
                var p = $"layer{s + 1}.{b}";
                int stride = s > 0 && b == 0 ? 2 : 1;
                string y;
                if (spec.Block == BlockKind.Basic)
                {
                    y = Relu(Bn(Conv(h, p + ".conv1", 3, stride, 1), p + ".bn1"));
                    y = Bn(Conv(y, p + ".conv2", 3, 1, 1), p + ".bn2");
                }
                else
                {
                    y = Relu(Bn(Conv(h, p + ".conv1", 1, 1, 0), p + ".bn1"));
                    y = Relu(Bn(Conv(y, p + ".conv2", 3, stride, 1), p + ".bn2"));
                    y = Bn(Conv(y, p + ".conv3", 1, 1, 0), p + ".bn3");
                }
                var identity = weights.ContainsKey(p + ".downsample.0.weight")
                    ? Bn(Conv(h, p + ".downsample.0", 1, stride, 0), p + ".downsample.1")
                    : h;
                h = Relu(Node("Add", [y, identity], p + ".add"));
            }
        h = Node("GlobalAveragePool", [h], "avgpool");
        h = Node("Flatten", [h], "flatten", Int("axis", 1));
        Init("fc.weight");
        Init("fc.bias");
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
        ResnetMnist.Outputs.AtomicFile.Write(path, proto.WriteTo);
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
