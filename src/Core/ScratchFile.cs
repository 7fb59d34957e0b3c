namespace ResnetMnist.Core;

/// <summary>Scratch files: large intermediate bytes (a checkpoint's archive on its way in or out) kept on disk
/// instead of in managed memory, where they would raise resident memory until the next full collection.</summary>
public static class ScratchFile
{
    /// <summary>A new empty file in the temp folder, readable and writable, deleted when the stream is closed.</summary>
    public static FileStream Create() =>
        new(Path.Combine(Path.GetTempPath(), $"resnet-mnist-{Environment.ProcessId}-{Guid.NewGuid():N}.zip"),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
}
