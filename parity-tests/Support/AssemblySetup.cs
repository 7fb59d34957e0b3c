using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests;

/// <summary>Loads TorchSharp's natives once, before any test touches <c>torch</c>.</summary>
[SetUpFixture]
public sealed class AssemblySetup
{
    [OneTimeSetUp]
    public void LoadNatives() => NativeLoader.EnsureLoaded();
}
