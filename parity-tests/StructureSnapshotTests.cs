using NUnit.Framework;
using ResnetMnist.Model;

namespace ResnetMnist.ParityTests;

/// <summary>
/// The model's structure (module names, parameter shapes, counts) as a Snapshooter snapshot in
/// <c>__snapshots__/</c>. CI runs with SNAPSHOOTER_STRICT_MODE=true, so a missing snapshot fails. It compares the C#
/// model with its own earlier output, not with PyTorch: category Snapshot, not Parity.
/// </summary>
[TestFixture, Category("Snapshot")]
public sealed class StructureSnapshotTests
{
    [Test]
    public void Resnet18MnistStructure()
    {
        using var m = Models.resnet18(1, 10);
        var structure = new
        {
            Modules = m.named_modules().Select(x => $"{x.name}: {x.module.GetType().Name}").ToList(),
            Parameters = m.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").ToList(),
            Buffers = m.named_buffers().Select(b => $"{b.name} [{string.Join(", ", b.buffer.shape)}]").ToList(),
            ParameterCount = m.parameters().Sum(p => p.numel()),
            StateDictEntries = m.state_dict().Count,
        };
        Snapshooter.NUnit.Snapshot.Match(structure);
    }
}
