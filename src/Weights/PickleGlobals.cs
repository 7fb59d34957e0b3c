namespace ResnetMnist.Weights;

/// <summary>
/// The globals (<c>module.name</c>) a state_dict pickle may name: the part of PyTorch's <c>weights_only</c> unpickler's
/// allow-list (torch/_weights_only_unpickler.py) that <c>torch.save(state_dict)</c> uses. Anything else is refused
/// before the pickle reaches an unpickler, because <c>torch.load</c> (weights_only=False, the default before
/// PyTorch 2.6) would import and call it.
/// </summary>
public static class PickleGlobals
{
    /// <summary>Globals a <c>torch.save(state_dict)</c> (or optimizer state_dict) file may use.</summary>
    public static bool IsStateDictGlobal(string global) =>
        global is "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor"
            or "torch.Size" or "torch.device"
        || (global.StartsWith("torch.", StringComparison.Ordinal)
            && PickleMachine.StorageElementSizes.ContainsKey(global["torch.".Length..]));

    /// <summary>Globals that only appear when a whole <c>nn.Module</c> was pickled.</summary>
    public static bool IsWholeModelGlobal(string global) =>
        global == "torch._utils._rebuild_parameter"
        || global.StartsWith("torch.nn.", StringComparison.Ordinal)
        || global.StartsWith("torchvision.", StringComparison.Ordinal);

    /// <summary>Returns the globals referenced by <paramref name="pickle"/>, in order of appearance (duplicates removed).</summary>
    /// <exception cref="InvalidDataException">The opcode stream is malformed (see <see cref="PickleMachine"/>).</exception>
    public static IReadOnlyList<string> Scan(ReadOnlySpan<byte> pickle) => PickleMachine.Analyze(pickle).Globals;
}
