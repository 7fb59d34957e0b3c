using ResnetMnist.Tool;
using ResnetMnist.Tool.Commands;
using Spectre.Console.Cli;

// Composition root: the commands and nothing else. Every command returns 0 (ok), 1 (runtime failure, a diverged
// run), 2 (usage, config or data error), or, for a run stopped by a signal after writing a resumable checkpoint,
// 128 + the signal's number: 130 (SIGINT, Ctrl-C), 143 (SIGTERM), 129 (SIGHUP); see tool/InterruptSignals.cs.
Terminal.SetWidth();
var app = new CommandApp();
app.Configure(c =>
{
    c.SetApplicationName(ToolCommand.Name);
    c.SetApplicationVersion(ToolInfo.Version);
    c.PropagateExceptions();
    c.UseStrictParsing();
    c.AddCommand<TrainCommand>("train").WithDescription("Train from a YAML config (without one: the packaged quickstart on the packaged MNIST sample).")
        .WithExample("train").WithExample("train", "--set", "train.epochs=2", "--out", "runs/two-epochs");
    c.AddCommand<InitCommand>("init").WithDescription("Write a commented config.yaml with every key at its default (never over an existing file).")
        .WithExample("init").WithExample("init", "my-experiment");
    c.AddCommand<EvaluateCommand>("evaluate").WithDescription("Test loss, accuracy, per-class accuracy and confusion matrix of a checkpoint.");
    c.AddCommand<PredictCommand>("predict").WithDescription("Classify PNG/JPEG digit images with a checkpoint.");
    c.AddCommand<SweepCommand>("sweep").WithDescription("One run per combination of --grid values, then a markdown table.")
        .WithExample("sweep", "--grid", "optimizer.lr=0.001,0.01", "--out", "runs/lr-sweep")
        .WithExample("sweep", "config.yaml", "--grid", "train.batch_size=16,64,256", "--grid", "optimizer.name=adam,sgd");
    c.AddBranch("config", b =>
    {
        b.SetDescription("Inspect configs.");
        b.AddCommand<ConfigShowCommand>("show").WithDescription("Print the resolved config (defaults and --set applied) as YAML.");
        b.AddCommand<ConfigKeysCommand>("keys").WithDescription("Every config key: default, allowed values, meaning, whether a resume may change it (Markdown; --yaml: a commented config).");
    });
    c.AddBranch("data", b =>
    {
        b.SetDescription("Download or verify datasets.");
        b.AddCommand<DataFetchCommand>("fetch").WithDescription("Download the configured dataset (md5-checked) into data.root.");
        b.AddCommand<DataVerifyCommand>("verify").WithDescription("Check the configured dataset's files.");
    });
    c.AddBranch("weights", b =>
    {
        b.SetDescription("Pretrained weights.");
        b.AddCommand<WeightsImportMlnetCommand>("import-mlnet").WithDescription("Convert ML.NET's ImageNet ResNet-18 (ONNX) to torchvision's layout (.pth + .safetensors), offline.");
        b.AddCommand<WeightsInspectCommand>("inspect").WithDescription("Keys, shapes, dtypes and parameter count of a weights file, and whether it fits the model.");
    });
    c.AddCommand<ParityCommand>("parity").WithDescription("Run a config through the tool and the reference PyTorch program and compare weights, layers, gradients and losses.")
        .WithExample("parity", "--steps", "20");
    c.AddCommand<BenchCommand>("bench").WithDescription("Training/evaluation speed and memory figures as JSON (bench/run.sh compares them with the reference).")
        .WithExample("bench", "config.yaml", "--mode", "steps");
    c.AddCommand<ExportCommand>("export").WithDescription("Write a checkpoint as an ONNX model (opset 13, dynamic batch axis) for deployment.")
        .WithExample("export", "runs/my-run", "--format", "onnx", "--out", "model.onnx");
    c.AddCommand<InfoCommand>("info").WithDescription("Versions, native library loading, threads and devices.");
});
return ErrorHandling.Run(() =>
{
    ErrorHandling.CheckOptionValues(args);
    return app.Run(ErrorHandling.SplitAtDoubleDash(args));
}, args);
