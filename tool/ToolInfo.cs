using System.Reflection;

namespace ResnetMnist.Tool;

static class ToolInfo
{
    public static string Version =>
        typeof(ToolInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
