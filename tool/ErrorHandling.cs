using ResnetMnist.Config;
using ResnetMnist.Core;
using ResnetMnist.Data;
using ResnetMnist.Outputs;
using ResnetMnist.Training;
using Spectre.Console.Cli;

namespace ResnetMnist.Tool;

/// <summary>The one error path: a single line <c>error: ...</c> on stderr and an exit code; a stack trace only with --verbose.</summary>
static class ErrorHandling
{
    public const int Ok = 0, Failure = 1, Usage = 2, Interrupted = 130;

    public static int Run(Func<int> body, string[] args)
    {
        bool verbose = args.Contains("--verbose");
        try
        {
            return body();
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e);
            PrintError(message);
            // The stack trace carries the message too (text from a file, perhaps): each of its lines escaped.
            if (verbose) foreach (var line in e.ToString().Split('\n')) Terminal.Err(line.TrimEnd('\r'));
            return code;
        }
    }

    /// <summary>Writes <c>error: MESSAGE</c> on stderr: one line, escaped (the message may carry text from a file).</summary>
    public static void PrintError(string message) => Console.Error.WriteLine($"error: {Printable.Escape(OneLine(message), 2048)}");

    /// <summary>The arguments after a <c>--</c> (file names, even ones that start with '-'); empty when there is none.</summary>
    public static IReadOnlyList<string> AfterDoubleDash { get; private set; } = [];

    /// <summary>
    /// Returns the arguments before the first <c>--</c> and keeps the rest in <see cref="AfterDoubleDash"/>: the command-line
    /// parser would otherwise read <c>-digit.png</c> after <c>--</c> as a (malformed) short option.
    /// </summary>
    public static string[] SplitAtDoubleDash(string[] args)
    {
        int at = Array.IndexOf(args, "--");
        if (at < 0) return args;
        AfterDoubleDash = args[(at + 1)..];
        return args[..at];
    }

    /// <summary>
    /// An option that takes a value but is last on the line, or followed by another option, is a usage error.
    /// (With strict parsing, Spectre.Console.Cli 0.57 otherwise binds the placeholder "__default_command" as its value.)
    /// </summary>
    public static void CheckOptionValues(string[] args)
    {
        var valued = typeof(ErrorHandling).Assembly.GetTypes()
            .Where(t => typeof(CommandSettings).IsAssignableFrom(t))
            .SelectMany(t => t.GetProperties())
            .Select(p => p.GetCustomAttributes(typeof(CommandOptionAttribute), true).OfType<CommandOptionAttribute>().FirstOrDefault())
            .Where(a => a is not null && a.ValueName is not null && !a.ValueIsOptional)
            .SelectMany(a => a!.LongNames.Select(n => "--" + n))
            .ToHashSet(StringComparer.Ordinal);
        // `--json` is a flag for evaluate, predict, info and weights inspect, and takes a FILE for bench only.
        if (args.Length == 0 || args[0] != "bench") valued.Remove("--json");
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--") break;
            if (valued.Contains(args[i]) && (i == args.Length - 1 || args[i + 1].StartsWith("--", StringComparison.Ordinal)))
                throw new UsageException($"option {args[i]} needs a value (for example {args[i]} {Example(args[i])})");
        }
    }

    static string Example(string option) => option switch
    {
        "--set" => "optimizer.lr=0.01",
        "--grid" => "train.batch_size=16,64",
        "--out" or "--resume" => "runs/my-run",
        _ => "VALUE",
    };

    /// <summary>An error message as one line (<see cref="Printable.OneLine"/>).</summary>
    internal static string OneLine(string m) => Printable.OneLine(m);

    /// <summary>
    /// Bad input carries its own exit code (<see cref="BadInputException"/>: config, data, weights, checkpoints);
    /// anything else is a runtime failure (1), reported by its message's first line only, never by a .NET type name.
    /// Parse errors of files (JsonException, FormatException, InvalidDataException, libtorch errors on a file's tensors)
    /// are turned into <see cref="BadInputException"/>s where the file is read, naming it; "unexpected failure" is
    /// left for what no reader foresaw.
    /// </summary>
    static (int, string) Classify(Exception e) => e switch
    {
        BadInputException b => (b.ExitCode, e.Message),
        CommandParseException or CommandRuntimeException => (Usage, e.Message),
        RunDirectoryException or UsageException => (Usage, e.Message),
        DivergedException or ToolFailureException => (Failure, e.Message),
        IOException or UnauthorizedAccessException => (Failure, e.Message),
        OutOfMemoryException or InsufficientExecutionStackException => (Failure, "out of memory or stack while reading the input; run with --verbose for details"),
        _ => (Failure, $"unexpected failure: {TorchFirstLine(e.Message)}; run with --verbose for details"),
    };

    static string TorchFirstLine(string m) => ResnetMnist.Weights.TorchArchive.FirstLine(m);
}

/// <summary>A wrong command line (missing argument, bad option value).</summary>
sealed class UsageException(string message) : BadInputException(message);

/// <summary>A step the tool depends on failed (not the user's input): exit 1 with its message.</summary>
sealed class ToolFailureException(string message) : Exception(message);
