using NUnit.Framework;

namespace ResnetMnist.ParityTests.Commands;

/// <summary>
/// The command printed in <c>--help</c> and in every suggestion is the one that ran the tool: <c>dotnet resnet-mnist</c>
/// through the <c>dotnet</c> muxer (a global or local tool, <c>dotnet exec</c>), the executable's name when the shell
/// found it on PATH (a <c>--tool-path</c> install's <c>dotnet-resnet-mnist</c>), else the path it was started by.
/// </summary>
[TestFixture, Category("Tool")]
public sealed class ToolCommandTests
{
    const string Tools = "/home/u/.dotnet/tools";

    [TestCase("/usr/share/dotnet/dotnet", "dotnet", "/usr/bin", ExpectedResult = "dotnet resnet-mnist", TestName = "the dotnet muxer (dotnet resnet-mnist, dotnet exec)")]
    [TestCase("/repo/bin/testhost", "/repo/bin/testhost", "/usr/bin", ExpectedResult = "dotnet resnet-mnist", TestName = "another host of the library")]
    [TestCase(null, null, null, ExpectedResult = "dotnet resnet-mnist", TestName = "nothing known")]
    [TestCase(Tools + "/dotnet-resnet-mnist", "dotnet-resnet-mnist", "/usr/bin:" + Tools, ExpectedResult = "dotnet-resnet-mnist", TestName = "found on PATH by the shell")]
    [TestCase(Tools + "/dotnet-resnet-mnist", Tools + "/dotnet-resnet-mnist", "/usr/bin:" + Tools + "/", ExpectedResult = "dotnet-resnet-mnist", TestName = "started by full path from a PATH folder")]
    [TestCase("/w/tools/dotnet-resnet-mnist", "tools/dotnet-resnet-mnist", "/usr/bin:tools", ExpectedResult = "tools/dotnet-resnet-mnist", TestName = "a tool path not on PATH, as typed")]
    [TestCase("/w/my tools/dotnet-resnet-mnist", "/w/my tools/dotnet-resnet-mnist", "", ExpectedResult = "'/w/my tools/dotnet-resnet-mnist'", TestName = "a path with a space, quoted")]
    [TestCase("/repo/bin/resnet-mnist", "resnet-mnist", "/repo/bin", ExpectedResult = "resnet-mnist", TestName = "the build output's apphost")]
    [TestCase("/t/.store/resnet-mnist/0.1.0/resnet-mnist/0.1.0/tools/net10.0/linux-x64/resnet-mnist", "dotnet-resnet-mnist", "/t", ExpectedResult = "dotnet-resnet-mnist", TestName = "a shim linked to the package's executable, on PATH")]
    [TestCase("/t/.store/resnet-mnist/0.1.0/resnet-mnist/0.1.0/tools/net10.0/linux-x64/resnet-mnist", "/t/dotnet-resnet-mnist", "/usr/bin", ExpectedResult = "/t/dotnet-resnet-mnist", TestName = "a shim linked to the package's executable, by path")]
    public string The_command_follows_the_process(string? processPath, string? argv0, string? path) =>
        ToolCommand.Of(processPath, argv0, path);

    /// <summary>
    /// The same <c>data verify</c> on a folder without MNIST, through <c>dotnet exec</c> and through the build output's
    /// apphost (by full path, then found on PATH by a shell): its hint and <c>--help</c> name the command that ran, and
    /// help written to a pipe keeps each example on one line.
    /// </summary>
    [Test, Category("Tool")]
    public void Help_and_hints_name_the_command_that_ran()
    {
        var dir = TempDir.New("tool-command");
        Directory.CreateDirectory(Path.Combine(dir, "empty"));
        string[] verify = ["data", "verify", "--set", "data.root=empty"];
        var bin = Path.GetDirectoryName(Tool.Apphost)!;
        var noBin = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" };

        var viaDotnet = Tool.Run(dir, verify);
        Assert.That(viaDotnet.Stderr, Does.Contain("run `dotnet resnet-mnist data fetch`"), viaDotnet.ToString());
        var byPath = Tool.Run(dir, verify, noBin, Tool.Apphost);
        Assert.That(byPath.ExitCode, Is.EqualTo(2), byPath.ToString());
        Assert.That(byPath.Stderr, Does.Contain($"run `{Tool.Apphost} data fetch`"), byPath.ToString());
        // COLUMNS unset and output to a pipe: help is laid out unwrapped, so the examples hold the whole command
        // however long the build folder's path is (Spectre's fallback of 80 columns broke them mid-line).
        var help = Tool.Run(dir, ["--help"], new(noBin) { ["COLUMNS"] = "" }, Tool.Apphost);
        Assert.That(help.Stdout, Does.Contain($"{Tool.Apphost} [OPTIONS] <COMMAND>").And.Contain($"{Tool.Apphost} train --set"), help.ToString());

        var onPath = Tool.Run(dir, ["-c", $"exec resnet-mnist {string.Join(' ', verify)}"], new() { ["PATH"] = $"{bin}:/usr/bin:/bin" }, "/bin/sh");
        Assert.That(onPath.Stderr, Does.Contain("run `resnet-mnist data fetch`"), onPath.ToString());
    }
}
