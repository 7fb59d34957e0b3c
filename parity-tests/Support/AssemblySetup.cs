using NUnit.Framework;
using ResnetMnist.Native;

namespace ResnetMnist.ParityTests;

/// <summary>
/// Before any test: points the cache and package variables at this run's own folders
/// (<see cref="TestEnvironment.UseOwnFolders"/>), then loads TorchSharp's natives once, before any test touches <c>torch</c>.
/// </summary>
[SetUpFixture]
public sealed class AssemblySetup
{
    [OneTimeSetUp]
    public void Setup()
    {
        TestEnvironment.UseOwnFolders();
        NativeLoader.EnsureLoaded();
    }
}
