namespace ResnetMnist.Data;

/// <summary>Data that cannot be used (missing, malformed, failed checksum); the message starts with the file.</summary>
public sealed class DataException(string message, Exception? inner = null) : BadInputException(message, inner);
