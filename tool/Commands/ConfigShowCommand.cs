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
        Console.Write(ConfigLoader.ToYaml(ConfigLoader.Load(s.Config, s.Set)));
        return 0;
    }
}
