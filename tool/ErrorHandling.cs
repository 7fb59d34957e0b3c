using ResnetMnist.Config;
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
            Console.Error.WriteLine($"error: {OneLine(message)}");
            if (verbose) Console.Error.WriteLine(e);
            return code;
        }
    }

    /// <summary>Messages from libraries may span lines; the error is always one line.</summary>
    static string OneLine(string m) =>
        string.Join("; ", m.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    static (int, string) Classify(Exception e) => e switch
    {
        CommandParseException or CommandRuntimeException => (Usage, e.Message),
        ConfigException or DataException or RunDirectoryException or UsageException => (Usage, e.Message),
        ResnetMnist.Weights.WeightsFileException or CheckpointException => (Usage, e.Message),
        ArgumentException when e.Source == "ResnetMnist" => (Usage, e.Message),
        DivergedException => (Failure, e.Message),
        IOException or UnauthorizedAccessException => (Failure, e.Message),
        InvalidOperationException when e.Message.StartsWith("device:") => (Usage, e.Message),
        _ => (Failure, $"{e.GetType().Name}: {e.Message}"),
    };
}

/// <summary>A wrong command line (missing argument, bad option value).</summary>
sealed class UsageException(string message) : Exception(message);
