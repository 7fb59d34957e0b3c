namespace ResnetMnist.Weights;

/// <summary>A weights file that cannot be used: unreadable, unsafe, or not matching the model. The message starts with the file path.</summary>
public sealed class WeightsFileException : BadInputException
{
    /// <summary>The file concerned.</summary>
    public string FilePath { get; }

    public WeightsFileException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner) => FilePath = path;
}
