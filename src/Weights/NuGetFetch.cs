using System.Security.Cryptography;
using NuGet.Common;
using NuGet.Configuration;
using NuGet.Packaging;
using NuGet.Packaging.Core;
using NuGet.Packaging.Signing;
using NuGet.Protocol;
using NuGet.Protocol.Core.Types;
using NuGet.Versioning;

namespace ResnetMnist.Weights;

/// <summary>
/// Fetches one pinned package from the user's configured NuGet sources, with NuGet's own client libraries: the
/// sources and the global packages folder come from <c>nuget.config</c> resolution (as <c>dotnet restore</c> finds
/// them from a folder), the download's SHA-512 must equal the pinned one, and the package is
/// extracted into the global packages folder by NuGet (which applies the client's signature policy).
/// </summary>
public static class NuGetFetch
{
    /// <summary>Downloads and extracts <paramref name="id"/> <paramref name="version"/>; returns its folder in the global packages folder.</summary>
    /// <param name="sha512Base64">The package file's SHA-512 (base64, as in <c>.nupkg.sha512</c>): anything else is refused.</param>
    /// <param name="settingsRoot">Folder whose <c>nuget.config</c> chain is used (default: the current folder).</param>
    /// <param name="progress">Bytes downloaded (total unknown).</param>
    public static string Fetch(string id, string version, string sha512Base64, string? settingsRoot = null,
        IProgress<(long done, long? total)>? progress = null, CancellationToken cancel = default)
    {
        var settings = Settings.LoadDefaultSettings(settingsRoot ?? Directory.GetCurrentDirectory());
        var globalFolder = SettingsUtility.GetGlobalPackagesFolder(settings);
        var identity = new PackageIdentity(id, NuGetVersion.Parse(version));
        var sources = new PackageSourceProvider(settings).LoadPackageSources().Where(s => s.IsEnabled).ToList();
        if (sources.Count == 0) throw new WeightsFileException(id, "no NuGet package source is configured (nuget.config)");
        var errors = new List<string>();
        using var cache = new SourceCacheContext { NoCache = true };
        foreach (var source in sources)
        {
            try
            {
                var repo = Repository.Factory.GetCoreV3(source);
                var finder = repo.GetResource<FindPackageByIdResource>(cancel)
                    ?? throw new InvalidOperationException("the source offers no package download");
                using var buffer = new MemoryStream();
                using (var counting = new ProgressStream(buffer, progress))
                    if (!finder.CopyNupkgToStreamAsync(id, identity.Version, counting, cache, NullLogger.Instance, cancel).GetAwaiter().GetResult())
                    {
                        errors.Add($"{source.Source}: not found");
                        continue;
                    }
                var hash = Convert.ToBase64String(SHA512.HashData(buffer.ToArray()));
                if (hash != sha512Base64)
                {
                    errors.Add($"{source.Source}: SHA-512 {hash} differs from the pinned {sha512Base64} (package refused)");
                    continue;
                }
                buffer.Position = 0;
                var policy = ClientPolicyContext.GetClientPolicy(settings, NullLogger.Instance);
                using var result = GlobalPackagesFolderUtility.AddPackageAsync(source.Source, identity, buffer, globalFolder, Guid.Empty,
                    policy, NullLogger.Instance, cancel).GetAwaiter().GetResult();
                return new VersionFolderPathResolver(globalFolder).GetInstallPath(id, identity.Version);
            }
            catch (Exception e) when (e is not OperationCanceledException and not WeightsFileException)
            {
                errors.Add($"{source.Source}: {TorchArchive.FirstLine(e.Message)}");
            }
        }
        throw new WeightsFileException(id, $"{version} could not be fetched from the configured NuGet sources ({string.Join("; ", errors)})");
    }

    /// <summary>Reports the bytes written through it.</summary>
    sealed class ProgressStream(Stream inner, IProgress<(long done, long? total)>? progress) : Stream
    {
        long _done;
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Report(count); }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Report(buffer.Length); }
        public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken token) { await inner.WriteAsync(buffer.AsMemory(offset, count), token); Report(count); }
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken token = default) { await inner.WriteAsync(buffer, token); Report(buffer.Length); }
        void Report(int n) { _done += n; progress?.Report((_done, null)); }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { } // the buffer stays open for the caller
    }
}
