namespace ResnetMnist.Core;

/// <summary>The config name of an enum member (<c>sum-rgb</c>, <c>onecycle</c>).</summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class NameAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>Config names of enum members, both ways.</summary>
public static class ConfigNames
{
    /// <summary>The config name of <paramref name="value"/> (its <see cref="NameAttribute"/>).</summary>
    public static string Name(this Enum value) =>
        value.GetType().GetField(value.ToString())?.GetCustomAttributes(typeof(NameAttribute), false).OfType<NameAttribute>().FirstOrDefault()?.Name
        ?? value.ToString().ToLowerInvariant();

    /// <summary>Every config name of <paramref name="enumType"/>, in declaration order.</summary>
    public static IReadOnlyList<string> Names(Type enumType) => Enum.GetValues(enumType).Cast<Enum>().Select(Name).ToList();

    /// <summary>The member named <paramref name="name"/> (case-insensitive); null when none is.</summary>
    public static object? Parse(Type enumType, string name) =>
        Enum.GetValues(enumType).Cast<Enum>().FirstOrDefault(v => string.Equals(v.Name(), name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The member of <typeparamref name="T"/> named <paramref name="name"/>; throws <see cref="ConfigException"/> when none is.</summary>
    public static T Parse<T>(string name) where T : struct, Enum =>
        Parse(typeof(T), name) is T v ? v : throw new ConfigException($"'{name}' is not allowed; allowed: {string.Join(", ", Names(typeof(T)))}");
}
