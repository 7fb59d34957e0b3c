namespace ResnetMnist.Core;

/// <summary>A config that cannot be used: the message names the file (line:column), the key and what is allowed.</summary>
public sealed class ConfigException(string message) : BadInputException(message);
