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
        var tool = ToolCommand.Name;
        var header = $"# resnet-mnist config: every key at its default ({tool} config keys explains them), except\n" +
                     $"# data.root: sample, the MNIST sample packaged with the tool, so that {tool} train config.yaml\n" +
                     "# trains at once, offline. For the full dataset set data.root to a folder (relative to this file; data/MNIST/raw/\n" +
                     $"# in torchvision's layout there) and set data.download: true or run {tool} data fetch config.yaml.\n";
        var config = new TrainingConfig { Data = new DataConfig { Root = ResnetMnist.Data.PackagedFiles.Sample } };
        // A file (or link) that appeared meanwhile is not overwritten either.
        if (!AtomicFile.CreateNewText(file, header + ConfigSchema.ToYaml(config, comments: true)))
            throw new UsageException($"{file}: already exists; nothing was changed (pick another DIR, or remove the file)");
        Terminal.Out($"wrote {file}");
        return ErrorHandling.Ok;
    }
}
