using System.ComponentModel;
using System.Globalization;
using System.Text;
using ResnetMnist.Config;
using ResnetMnist.Outputs;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

sealed class SweepCommand : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommonSettings
    {
        [CommandArgument(0, "<CONFIG>"), Description("Base YAML config.")]
        public string Config { get; init; } = "";

        [CommandOption("--grid <KEY=V1,V2>"), Description("A key and its values; one run per combination of all --grid options.")]
        public string[] Grid { get; init; } = [];

        [CommandOption("--out <SWEEP_DIR>"), Description("Sweep folder. Default: runs/sweep-<yyyyMMdd-HHmmss>.")]
        public string? Out { get; init; }

        [CommandOption("--force"), Description("Overwrite existing run folders.")]
        public bool Force { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        if (s.Grid.Length == 0) throw new UsageException("sweep: give at least one --grid key=v1,v2");
        var axes = s.Grid.Select(g =>
        {
            int eq = g.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--grid {g}: expected key=v1,v2,...");
            return (Key: g[..eq], Values: g[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }).ToList();
        IEnumerable<List<(string Key, string Value)>> combos = [[]];
        foreach (var a in axes) combos = combos.SelectMany(c => a.Values.Select(v => new List<(string, string)>(c) { (a.Key, v) })).ToList();

        var configs = combos.Select(c => (Combo: c, Config: ConfigLoader.Load(s.Config, s.Set.Concat(c.Select(kv => $"{kv.Key}={kv.Value}"))))).ToList(); // validate all first
        var root = s.Out ?? Path.Combine("runs", $"sweep-{DateTime.Now:yyyyMMdd-HHmmss}");
        RunDirectory.RefuseSystemFolder(root);
        Directory.CreateDirectory(root);
        var rows = new List<string>();
        foreach (var (combo, cfg) in configs)
        {
            var name = string.Join("_", combo.Select(kv => $"{kv.Key.Split('.').Last()}-{kv.Value}"));
            var runPath = Path.Combine(root, name);
            Console.WriteLine($"== {name}");
            int code = Runs.Train(cfg, runPath, resume: false, s.Force, quiet: false);
            if (code != 0) return code;
            var m = RunDirectory.ReadMetrics(Path.Combine(runPath, "metrics.csv"));
            var last = m[^1];
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {string.Join(" | ", combo.Select(kv => kv.Value))} | {last.TrainLoss:F4} | {last.TestAccuracy:F2} | {m.Sum(e => e.EpochSeconds):F1} | [{name}]({name}/) |"));
        }
        var md = new StringBuilder();
        md.AppendLine($"# Sweep over {string.Join(", ", axes.Select(a => a.Key))}");
        md.AppendLine();
        md.AppendLine($"Base config: `{s.Config}`; final-epoch train loss (mean of the epoch's batch losses), final test accuracy and training time.");
        md.AppendLine();
        md.AppendLine($"| {string.Join(" | ", axes.Select(a => a.Key))} | final train loss | test accuracy (%) | train time (s) | run |");
        md.AppendLine($"|{string.Concat(axes.Select(_ => "---|"))}---:|---:|---:|---|");
        foreach (var r in rows) md.AppendLine(r);
        AtomicFile.WriteAllText(Path.Combine(root, "sweep.md"), md.ToString());
        Console.Write(md.ToString());
        return 0;
    }
}
