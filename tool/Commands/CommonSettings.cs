using System.ComponentModel;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

class CommonSettings : CommandSettings
{
    [CommandOption("--set <KEY=VALUE>"), Description("Override a config key, e.g. --set optimizer.lr=0.01 (repeatable; wins over the file).")]
    public string[] Set { get; init; } = [];

    [CommandOption("--verbose"), Description("Print stack traces on errors.")]
    public bool Verbose { get; init; }
}
