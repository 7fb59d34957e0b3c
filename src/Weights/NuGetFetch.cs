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
/// them from a folder), the package is streamed to a temp file and hashed on the way (never held whole in memory, and
/// refused past <see cref="FetchLimits.MaxPackageBytes"/>), its SHA-512 must equal the pinned one, and it is
/// extracted into the global packages folder by NuGet (which applies the client's signature policy). A source that
/// does not start sending the package within <see cref="FetchLimits.FirstByte"/> (30 s), or stops sending for
/// <see cref="FetchLimits.Stall"/> (60 s), is given up with one line and the next source is tried.
/// </summary>
public static class NuGetFetch
{
    /// <summary>Bounds of one fetch.</summary>
    /// <param name="FirstByte">From asking a source to its first byte of the package (connection, service index, lookup).</param>
    /// <param name="Stall">Longest wait for the next bytes once the package flows.</param>
    /// <param name="MaxPackageBytes">Largest package accepted (the pinned one is 57 MiB).</param>
    public sealed record FetchLimits(TimeSpan FirstByte, TimeSpan Stall, long MaxPackageBytes)
    {
        /// <summary>30 s to the first byte, 60 s without a byte, 256 MiB.</summary>
        public static FetchLimits Default { get; } = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60), 256L << 20);
    }

    /// <summary>
    /// The global packages folder as <c>dotnet restore</c> resolves it: <c>$NUGET_PACKAGES</c> if set, else the
    /// <c>globalPackagesFolder</c> of the <paramref name="settings"/>' <c>nuget.config</c> chain, else
    /// <c>$HOME/.nuget/packages</c>. NuGet's own <c>SettingsUtility.GetGlobalPackagesFolder</c> gives the same, except
    /// that it reads the home folder once per process and keeps it; this reads <c>HOME</c> on every call.
    /// </summary>
    public static string GlobalPackagesFolder(ISettings settings)
    {
        bool configured = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NUGET_PACKAGES")) ||
            settings.GetSection(ConfigurationConstants.Config)?.GetFirstItemWithAttribute<AddItem>(
                ConfigurationConstants.KeyAttribute, ConfigurationConstants.GlobalPackagesFolder) is not null;
        return configured
            ? SettingsUtility.GetGlobalPackagesFolder(settings)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    /// <summary>Downloads and extracts <paramref name="id"/> <paramref name="version"/>; returns its folder in the global packages folder.</summary>
    /// <param name="sha512Base64">The package file's SHA-512 (base64, as in <c>.nupkg.sha512</c>): anything else is refused.</param>
    /// <param name="settingsRoot">Folder whose <c>nuget.config</c> chain is used (default: the current folder).</param>
    /// <param name="progress">Bytes downloaded (total unknown).</param>
    /// <param name="limits">Time and size bounds (default <see cref="FetchLimits.Default"/>).</param>
    public static string Fetch(string id, string version, string sha512Base64, string? settingsRoot = null,
        IProgress<(long done, long? total)>? progress = null, CancellationToken cancel = default, FetchLimits? limits = null)
    {
        limits ??= FetchLimits.Default;
        var settings = Settings.LoadDefaultSettings(settingsRoot ?? Directory.GetCurrentDirectory());
        var globalFolder = GlobalPackagesFolder(settings);
        var identity = new PackageIdentity(id, NuGetVersion.Parse(version));
        var sources = new PackageSourceProvider(settings).LoadPackageSources().Where(s => s.IsEnabled).ToList();
        if (sources.Count == 0) throw new WeightsFileException(id, "no NuGet package source is configured (nuget.config)");
        var errors = new List<string>();
        using var cache = new SourceCacheContext { NoCache = true };
        foreach (var source in sources)
        {
            try
            {
                using var package = new FileStream(Path.Combine(Path.GetTempPath(), $".resnet-mnist-nupkg-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp"),
                    FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
                using var hash = IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA512);
                var counting = new HashingStream(package, hash, progress, limits.MaxPackageBytes);
                if (!Download(source, id, identity.Version, counting, cache, limits, cancel))
                {
                    errors.Add($"{source.Source}: not found");
                    continue;
                }
                var actual = Convert.ToBase64String(hash.GetHashAndReset());
                if (actual != sha512Base64)
                {
                    errors.Add($"{source.Source}: SHA-512 {actual} differs from the pinned {sha512Base64} (package refused)");
                    continue;
                }
                package.Position = 0;
                var policy = ClientPolicyContext.GetClientPolicy(settings, NullLogger.Instance);
                using var result = GlobalPackagesFolderUtility.AddPackageAsync(source.Source, identity, package, globalFolder, Guid.Empty,
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

    /// <summary>
    /// Copies the package from <paramref name="source"/> into <paramref name="to"/> within <paramref name="limits"/>:
    /// a watchdog cancels NuGet's request when no byte came for too long, and gives it up if it does not end then.
    /// </summary>
    static bool Download(PackageSource source, string id, NuGetVersion version, HashingStream to, SourceCacheContext cache,
        FetchLimits limits, CancellationToken cancel)
    {
        using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var task = Task.Run(() =>
        {
            var repo = Repository.Factory.GetCoreV3(source);
            var finder = repo.GetResource<FindPackageByIdResource>(watchdog.Token)
                ?? throw new InvalidOperationException("the source offers no package download");
            return finder.CopyNupkgToStreamAsync(id, version, to, cache, NullLogger.Instance, watchdog.Token).GetAwaiter().GetResult();
        }, CancellationToken.None);
        var started = DateTime.UtcNow;
        var done = ((IAsyncResult)task).AsyncWaitHandle;
        while (!done.WaitOne(200))
        {
            cancel.ThrowIfCancellationRequested();
            var (limit, since, what) = to.LastWrite is DateTime last
                ? (limits.Stall, last, $"sent no data for {Seconds(limits.Stall)}")
                : (limits.FirstByte, started, $"did not start sending the package within {Seconds(limits.FirstByte)}");
            if (DateTime.UtcNow - since < limit) continue;
            watchdog.Cancel();
            // NuGet honours the token on its requests; a call that does not return is abandoned (the temp file goes with the stream).
            done.WaitOne(5000);
            throw new TimeoutException($"the source {what}");
        }
        if (to.TooLarge) throw new InvalidDataException($"the package is larger than the {InputFiles.Size(limits.MaxPackageBytes)} allowed (refused)");
        return task.GetAwaiter().GetResult();
    }

    static string Seconds(TimeSpan t) => $"{t.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)} s";

    /// <summary>Writes through to a file, hashing and counting the bytes; refuses more than a cap.</summary>
    sealed class HashingStream(Stream inner, IncrementalHash hash, IProgress<(long done, long? total)>? progress, long maxBytes) : Stream
    {
        long _done;
        long _lastTicks;
        public bool TooLarge { get; private set; }
        public DateTime? LastWrite => Interlocked.Read(ref _lastTicks) is long t and > 0 ? new DateTime(t, DateTimeKind.Utc) : null;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_done + buffer.Length > maxBytes)
            {
                TooLarge = true;
                throw new IOException($"the package is larger than the {InputFiles.Size(maxBytes)} allowed");
            }
            inner.Write(buffer);
            hash.AppendData(buffer);
            _done += buffer.Length;
            Interlocked.Exchange(ref _lastTicks, DateTime.UtcNow.Ticks);
            progress?.Report((_done, null));
        }
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken token) { Write(buffer.AsSpan(offset, count)); return Task.CompletedTask; }
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken token = default) { Write(buffer.Span); return ValueTask.CompletedTask; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _done;
        public override long Position { get => _done; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { } // the file stays open for the caller
    }
}
