using System.ComponentModel;
using ResnetMnist.Config;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class ConfigShowCommand : Command<ConfigShowCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<CONFIG>"), Description("YAML config.")]
        public string Config { get; init; } = "";
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        // Values come from the file and --set: each line escaped (Terminal), so that a path cannot carry escape sequences.
        Terminal.OutLines(ConfigSchema.ToYaml(ConfigLoader.Load(s.Config, s.Set)));
        return 0;
    }
}

/// <summary><c>config keys</c>: every key with its default, what is allowed, its meaning and whether a resume may change it.</summary>
sealed class ConfigKeysCommand : Command<ConfigKeysCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--yaml"), Description("Print a commented config with every key at its default instead of the Markdown table.")]
        public bool Yaml { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        Console.Write(s.Yaml ? ConfigSchema.ToYaml(new TrainingConfig(), comments: true) : ConfigSchema.MarkdownTable());
        return 0;
    }
}
