using System.Collections;
using static TorchSharp.torch;

namespace ResnetMnist.Weights;

/// <summary>
/// What a state_dict's values must be before they are copied into a model or written out: tensors (not an int or
/// None under a tensor's name), finite (no NaN or infinity), and of a kind the target takes (floating point for
/// weights and running statistics, integer for <c>num_batches_tracked</c>). One place, used by every loader and writer.
/// </summary>
public static class StateDictChecks
{
    /// <summary>The first floating-point tensor that holds a NaN or an infinity, by key; null when all are finite.</summary>
    public static string? FirstNonFinite(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        using var _ = no_grad();
        foreach (var (key, t) in tensors)
            if (!IsFinite(t)) return key;
        return null;
    }

    /// <summary>True when <paramref name="t"/> is not floating point, or holds no NaN and no infinity.</summary>
    public static bool IsFinite(Tensor t)
    {
        if (!t.is_floating_point()) return true;
        using var _ = no_grad();
        using var mask = t.isfinite(); // a bool per element (11 MB for ResNet-18): freed here, not left to the finalizer
        using var finite = mask.all();
        return finite.item<bool>();
    }

    /// <summary>
    /// Whether <paramref name="source"/> may be copied into <paramref name="target"/> (same name and shape already
    /// checked): null when it may; else the problem, after the key. PyTorch's <c>load_state_dict</c> copies with
    /// <c>copy_</c>, converting any dtype silently; here floating point converts to floating point (float16, bfloat16,
    /// float32, float64: the caller notes the conversion) and integer to integer, while an integer or bool tensor for a
    /// floating-point weight (or the reverse), and NaN or infinite values, are refused.
    /// </summary>
    public static string? CopyProblem(string key, Tensor source, Tensor target) =>
        KindProblem(key, source, target) ?? (IsFinite(source) ? null : $"{key}: holds NaN or infinite values; allowed: finite values");

    /// <summary>The dtype half of <see cref="CopyProblem"/>: floating point for floating point, integer for integer.</summary>
    public static string? KindProblem(string key, Tensor source, Tensor target)
    {
        bool sourceFloat = source.is_floating_point(), targetFloat = target.is_floating_point();
        if (sourceFloat == targetFloat && !source.is_complex()) return null;
        return $"{key}: is {DTypeName(source)} but the model's {key} is {DTypeName(target)}; allowed: " +
               (targetFloat ? "a floating-point tensor (float16, bfloat16, float32, float64)" : "an integer tensor");
    }

    /// <summary>The dtype as PyTorch prints it without <c>torch.</c>: <c>float32</c>, <c>int64</c>, <c>bool</c>.</summary>
    public static string DTypeName(Tensor t) => WeightsFile.DTypeName(t.dtype.ToString());

    /// <summary>
    /// The state_dict of an unpickled table: every entry a string key mapped to a tensor. Anything else under a
    /// tensor's name (an int, None, a string, a dict) is refused naming the key and what it is, as Python names it.
    /// </summary>
    public static Dictionary<string, Tensor> Tensors(Hashtable table, string file)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry kv in table)
        {
            if (kv.Key is not string key)
                throw new WeightsFileException(file, $"holds a key that is {PythonKind(kv.Key)}, not a string: not a state_dict; allowed: tensor names such as conv1.weight");
            if (kv.Value is not Tensor t)
                throw new WeightsFileException(file, $"{key}: is {PythonKind(kv.Value)}, not a tensor: not a state_dict; allowed: a tensor under every key");
            result[key] = t;
        }
        return result;
    }

    /// <summary>What an unpickled value is, as Python would name its type: <c>None</c>, <c>an int</c>, <c>a str</c>, ...</summary>
    static string PythonKind(object? value) => value switch
    {
        null => "None",
        bool => "a bool",
        int or long or uint or ulong or short or byte or sbyte or System.Numerics.BigInteger => "an int",
        double or float => "a float",
        string => "a str",
        byte[] => "bytes",
        IDictionary => "a dict",
        IList => "a list or tuple",
        _ => "an object that is not a tensor",
    };
}
