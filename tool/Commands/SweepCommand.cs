using System.ComponentModel;
using ResnetMnist.Outputs;
using ResnetMnist.Sweeps;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class SweepCommand : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "[CONFIG]"), Description("Base YAML config. Without it: the packaged quickstart, as train without a config.")]
        public string? Config { get; init; }

        [CommandOption("--grid <KEY=V1,V2>"), Description("A key and its YAML values, split at top-level commas (--grid \"optimizer.betas=[[0.9,0.99]],[[0.8,0.99]]\"); one run per combination of all --grid options.")]
        public string[] Grid { get; init; } = [];

        [CommandOption("--out <SWEEP_DIR>"), Description("Sweep folder. Default: runs/sweep-<yyyyMMdd-HHmmss> (required with shards).")]
        public string? Out { get; init; }

        [CommandOption("--force"), Description("Run every combination again, overwriting run folders (without it, a rerun with the same --out skips completed and diverged runs and resumes the others).")]
        public bool Force { get; init; }

        [CommandOption("--shard <K/N>"), Description("Run only shard K (0 to N-1) of N: the runs whose grid index mod N is K. Default: from SLURM_ARRAY_TASK_ID/_MIN/_COUNT, or JOB_COMPLETION_INDEX with --shards; else the whole grid.")]
        public string? Shard { get; init; }

        [CommandOption("--shards <N>"), Description($"Number of shards where the scheduler gives only an index (JOB_COMPLETION_INDEX of a Kubernetes Indexed Job); or set {SweepShard.ShardsVariable}.")]
        public int? Shards { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var shard = SweepShard.Resolve(s.Shard, s.Shards, Environment.GetEnvironmentVariable);
        using var signals = new InterruptSignals();
        var hooks = new SweepHooks((cfg, path, options) => Runs.Execute(cfg, path, options, quiet: false, signals), Runs.Options(false, false), Terminal.Out, Terminal.Err);
        var sweep = Sweep.Run(new SweepRequest(s.Config, s.Set, s.Grid, s.Out, s.Force, shard), hooks);
        if (sweep.Interrupted is { } run)
        {
            Runs.ReportInterrupted(run.Result, run.RunPath);
            Terminal.Err($"sweep interrupted; run the same sweep command again to continue it ({sweep.TableFile})");
            return signals.ExitCode;
        }
        Terminal.OutLines(RunDirectory.ReadRecord(sweep.TableFile, "the sweep's table"));
        if (sweep.Elsewhere.Count > 0)
            Terminal.Out($"{sweep.Elsewhere.Count} of {sweep.Mine.Count} runs were being trained by another process, which records their end in {sweep.TableFile}");
        if (sweep.NotCompleted > 0) Terminal.Err($"{sweep.NotCompleted} of {sweep.Mine.Count} runs did not complete; see {sweep.TableFile}");
        return sweep.NotCompleted == 0 ? ErrorHandling.Ok : ErrorHandling.Failure;
    }
}
