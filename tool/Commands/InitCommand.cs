using System.ComponentModel;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

/// <summary><c>init [DIR]</c>: a commented config with every key at its default, never over an existing file.</summary>
sealed class InitCommand : Command<InitCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "[DIR]"), Description("Folder for config.yaml (created if missing). Default: the current folder.")]
        public string Dir { get; init; } = ".";

        [CommandOption("--verbose"), Description("Print stack traces on errors.")]
        public bool Verbose { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var file = Path.GetFullPath(Path.Combine(s.Dir, "config.yaml"));
        if (File.Exists(file) || Directory.Exists(file) || new FileInfo(file).LinkTarget is not null)
            throw new UsageException($"{file}: already exists; nothing was changed (pick another DIR, or remove the file)");
        if (File.Exists(Path.GetFullPath(s.Dir))) throw new UsageException($"{Path.GetFullPath(s.Dir)}: is a file, expected a folder");
        OutputFolder.ForFile(file, "DIR", create: true);
        var header = "# resnet-mnist config: every key at its default (dotnet resnet-mnist config keys explains them).\n" +
                     "# data.root is relative to this file: put MNIST in torchvision's layout there (data/MNIST/raw/), or set\n" +
                     "# data.download: true, or run dotnet resnet-mnist data fetch config.yaml. Then: dotnet resnet-mnist train config.yaml\n";
        // A file (or link) that appeared meanwhile is not overwritten either.
        try { AtomicFile.CreateNewText(file, header + ConfigSchema.ToYaml(new TrainingConfig(), comments: true)); }
        catch (IOException e) when (e.Message.Contains("already exists", StringComparison.Ordinal))
        {
            throw new UsageException($"{file}: already exists; nothing was changed (pick another DIR, or remove the file)");
        }
        Terminal.Out($"wrote {file}");
        return ErrorHandling.Ok;
    }
}
