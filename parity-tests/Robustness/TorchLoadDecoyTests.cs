using NUnit.Framework;
using ResnetMnist.Weights;
using static ResnetMnist.ParityTests.Robustness.CraftedFiles;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// The decoy archive against PyTorch itself: torch.load (weights_only=False, PyTorch 1.13's default) runs the payload
/// hidden where it looks, while the tool refuses the file. And real torch.save files still pass the tool's checks.
/// </summary>
[TestFixture, Category("Robustness"), Parallelizable(ParallelScope.None)]
public sealed class TorchLoadDecoyTests
{
    [Test, Category("NeedsPyTorch")]
    public void Torch_load_runs_the_hidden_payload_and_the_tool_refuses_the_file()
    {
        Python.RequireTorch();
        var dir = TempDir.New("decoy");
        var marker = Path.Combine(dir, "PAYLOAD-RAN");
        var pth = DecoyPth(Path.Combine(dir, "decoy.pth"), marker);

        // The tool first: refused, nothing ran.
        var e = Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(pth))!;
        Assert.That(e.Message, Does.Contain("refused as ambiguous"));
        Assert.That(File.Exists(marker), Is.False, "the tool ran the payload");

        // PyTorch reads <first entry's folder>/data.pkl = x/data.pkl, the malicious one, and calls posix.system.
        var output = Python.Run("""
            import sys, torch
            print(repr(torch.load(sys.argv[1])))
            """, pth);
        Assert.That(File.Exists(marker), Is.True, $"torch.load did not run the payload (so the archive is not the decoy it claims to be): {output}");
        Assert.That(output.Trim(), Is.EqualTo("0"), "torch.load returns posix.system's exit status");
    }

    [Test, Category("NeedsPyTorch")]
    public void Real_torch_save_files_pass_the_checks_and_load_with_their_values()
    {
        Python.RequireTorch();
        var dir = TempDir.New("realsave");
        var pth = Path.Combine(dir, "real.pth");
        Python.Run("""
            import sys, torch
            from collections import OrderedDict
            base = torch.arange(24, dtype=torch.float32)
            sd = OrderedDict()
            sd["a.weight"] = base[:12].view(3, 4).clone()
            sd["a.bias"] = base[12:15].clone()
            sd["b.weight"] = torch.ones(2, 2, dtype=torch.float64)
            sd["n"] = torch.tensor(7)
            torch.save(sd, sys.argv[1])
            """, pth);
        var archive = TorchArchive.Read(pth);
        Assert.That(archive.Prefix, Is.EqualTo("real"));
        var sd = WeightsFile.ReadStateDict(pth);
        Assert.That(sd.Keys, Is.EquivalentTo(new[] { "a.weight", "a.bias", "b.weight", "n" }));
        Assert.That(sd["a.weight"].shape, Is.EqualTo(new long[] { 3, 4 }));
        Assert.That(sd["a.weight"].data<float>().ToArray(), Is.EqualTo(Enumerable.Range(0, 12).Select(i => (float)i).ToArray()));
        Assert.That(sd["n"].item<long>(), Is.EqualTo(7));
    }

    [Test, Category("NeedsPyTorch")]
    public void A_libtorch_error_while_loading_is_reported_by_its_first_line_only()
    {
        Python.RequireTorch();
        var dir = TempDir.New("views");
        var pth = Path.Combine(dir, "views.pth");
        // Two views of one storage, the second at offset 12: valid for PyTorch, beyond what the unpickler rebuilds.
        Python.Run("""
            import sys, torch
            base = torch.arange(24, dtype=torch.float32)
            torch.save({"a": base[:12], "b": base[12:15]}, sys.argv[1])
            """, pth);
        var e = Assert.Throws<WeightsFileException>(() => WeightsFile.ReadStateDict(pth))!;
        Assert.That(e.Message, Does.StartWith($"{pth}: not a readable PyTorch state_dict ("));
        Assert.That(e.Message, Does.Not.Contain("frame #").And.Not.Contain("Exception raised from").And.Not.Contain("\n"));
    }
}
