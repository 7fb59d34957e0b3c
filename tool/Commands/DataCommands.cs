using ResnetMnist.Config;
using ResnetMnist.Data;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool.Commands;

class DataSettings : CommonSettings
{
    [System.ComponentModel.Description("YAML config whose data.* keys name the dataset (default: configs/quickstart.yaml's defaults).")]
    [CommandArgument(0, "[CONFIG]")]
    public string? Config { get; init; }

    public TrainingConfig Load() => Config is null ? ConfigLoader.Parse("", null, Set) : ConfigLoader.Load(Config, Set);
}

sealed class DataFetchCommand : Command<DataSettings>
{
    public override int Execute(CommandContext context, DataSettings s, CancellationToken cancellation)
    {
        var cfg = s.Load();
        var files = cfg.Data.Dataset.Files;
        string last = "";
        var progress = new Progress<(string File, long Done, long? Total)>(p =>
        {
            var line = p.Total is long t ? $"{p.File}: {p.Done * 100 / Math.Max(1, t)}%" : $"{p.File}: {p.Done / 1024} KiB";
            if (line != last && !Console.IsErrorRedirected) { Console.Error.Write("\r" + Terminal.Safe(line) + "   "); last = line; }
        });
        DatasetFetcher.Fetch(files, cfg.Data.Root, progress, cancel: cancellation);
        if (!Console.IsErrorRedirected) Console.Error.WriteLine();
        return Verify(files, cfg.Data.Root);
    }

    internal static int Verify(IDatasetFiles files, string root)
    {
        int bad = 0, total = 0;
        foreach (var (file, ok, detail) in files.Verify(root))
        {
            Terminal.Out($"{(ok ? "ok " : "BAD")} {file}: {detail}");
            total++;
            if (!ok) bad++;
        }
        if (bad == 0) return ErrorHandling.Ok;
        Terminal.Err($"error: {files.Folder(root)}: {bad} of {total} {files.Title} files are missing or unreadable (see the BAD lines); " +
                                $"run `{ToolCommand.Name} data fetch`, or point data.root at a folder holding them");
        return ErrorHandling.Usage;
    }
}

sealed class DataVerifyCommand : Command<DataSettings>
{
    public override int Execute(CommandContext context, DataSettings s, CancellationToken cancellation)
    {
        var cfg = s.Load();
        return DataFetchCommand.Verify(cfg.Data.Dataset.Files, cfg.Data.Root);
    }
}
