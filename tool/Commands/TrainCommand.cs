using System.ComponentModel;
using ResnetMnist.Config;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[CONFIG]"), Description("YAML config (the init command writes one). Without it: the packaged quickstart (1 epoch) on ./data when that holds MNIST, else on the packaged sample. With --resume: the run's config.yaml.")]
        public string? Config { get; init; }

        [CommandOption("--out <RUN_DIR>"), Description("Run folder. Default: runs/<config name>-<yyyyMMdd-HHmmss>.")]
        public string? Out { get; init; }

        [CommandOption("--resume <RUN_DIR>"), Description("Continue the run in RUN_DIR from its last checkpoint.")]
        public string? Resume { get; init; }

        [CommandOption("--force"), Description("Overwrite an existing run folder, or resume despite result-affecting config changes.")]
        public bool Force { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        string runPath;
        TrainingConfig cfg;
        if (s.Resume is not null)
        {
            runPath = s.Resume;
            RunDirectory.Check(runPath, resume: true, s.Force); // a folder that is not a run is reported as such, before its config is read
            cfg = CheckpointConfig.Resolve(s.Resume, s.Config, s.Set, CheckpointUse.Resume).Config;
        }
        else
        {
            void Warn(string w) => Terminal.Err($"warning: {w}");
            cfg = ConfigLoader.LoadOrQuickstart(s.Config, ConfigOverride.Set(s.Set), Warn);
            runPath = s.Out ?? Path.Combine("runs", $"{Path.GetFileNameWithoutExtension(s.Config ?? "quickstart")}-{DateTime.Now:yyyyMMdd-HHmmss}");
            OutputFolder.RefuseSystemFolder(runPath);
        }
        return Runs.Train(cfg, runPath, resume: s.Resume is not null, s.Force, quiet: false);
    }
}
