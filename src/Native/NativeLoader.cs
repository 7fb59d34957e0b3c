using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace ResnetMnist.Native;

/// <summary>
/// The one place that loads TorchSharp's native libraries. Call <see cref="EnsureLoaded"/> before anything
/// touches <c>torch</c>; every entry point of this library does.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> was linked against GCC 13 and records a need for
/// <c>GLIBCXX_3.4.32</c>, which Debian 12 / Ubuntu 22.04 (libstdc++ up to GLIBCXX_3.4.30) do not have, so the
/// stock library fails to load there. The only symbol with that version, <c>std::ios_base_library_init()</c>,
/// is a link-time marker that no relocation refers to. When the stock library does not load, we write a copy
/// whose <c>GLIBCXX_3.4.32</c> need is marked weak (one 16-bit field changes, see <see cref="ElfVersionNeeds"/>)
/// into a cache folder, load libtorch from the package's folder and then that copy by full path, and
/// answer TorchSharp's <c>DllImport("LibTorchSharp")</c> with it. Where the stock library loads, it is used as is.
/// </remarks>
public static class NativeLoader
{
    /// <summary>Version needs that are link-time markers only, safe to weaken.</summary>
    public static readonly IReadOnlySet<string> MarkerVersions = new HashSet<string> { "GLIBCXX_3.4.32" };

    const string BridgeFile = "libLibTorchSharp.so";
    static readonly object Gate = new();
    static bool _loaded;

    /// <summary>How the native bridge was loaded: "stock", "patched:&lt;path&gt;" or "default" (non-Linux / not found).</summary>
    public static string Mode { get; private set; } = "not loaded";

    /// <summary>Loads the natives once; safe to call from any thread, any number of times.</summary>
    public static void EnsureLoaded()
    {
        if (_loaded) return;
        lock (Gate)
        {
            if (_loaded) return;
            Mode = Load();
            _loaded = true;
        }
    }

    /// <summary>
    /// How libtorch's pool threads (libgomp) wait for work when the user set neither <c>OMP_WAIT_POLICY</c> nor
    /// <c>GOMP_SPINCOUNT</c>, chosen from what other processes used of the machine over <see cref="LoadWindow"/> before
    /// libtorch loads (<see cref="DefaultWaitFor"/>). Measured on 2 cores (<c>bench/NOTES.md</c>): libgomp's own
    /// default (spinning ~300,000 iterations before sleeping) made 2 threads train 3–10× slower than 1 while another
    /// process kept a core busy; PASSIVE (sleep at once) holds 0.95–1.0× of 1 thread there but costs 9–17% on an idle
    /// machine, where each of a step's ~200 parallel regions wakes a sleeping thread; a short spin
    /// (<see cref="IdleSpinCount"/>) gains that back on an idle machine and loses 11–26% on a busy one.
    /// </summary>
    public const int IdleSpinCount = 1000;

    /// <summary>Other processes' CPU use, in cores, from which the machine counts as busy (threads then wait passively).</summary>
    public const double BusyCores = 0.5;

    /// <summary>How long the machine's CPU use is sampled before libtorch loads (100 ms).</summary>
    public static readonly TimeSpan LoadWindow = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The wait setting for a machine where other processes used <paramref name="othersCores"/> cores: a short spin
    /// (<c>GOMP_SPINCOUNT</c>=<see cref="IdleSpinCount"/>) below <see cref="BusyCores"/>, else (or when unknown)
    /// <c>OMP_WAIT_POLICY=PASSIVE</c>.
    /// </summary>
    public static (string Name, string Value) DefaultWaitFor(double? othersCores) =>
        othersCores < BusyCores ? ("GOMP_SPINCOUNT", IdleSpinCount.ToString(System.Globalization.CultureInfo.InvariantCulture)) : ("OMP_WAIT_POLICY", "PASSIVE");

    /// <summary>The variables libgomp reads its wait settings from; when the user set either, the tool sets neither.</summary>
    public static readonly IReadOnlyList<string> WaitVariables = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];

    /// <summary>Those of <paramref name="names"/> set (non-empty) in <paramref name="variable"/> (a lookup of environment
    /// variables), as <c>NAME=value</c> items in the order given.</summary>
    internal static List<string> UserSet(IEnumerable<string> names, Func<string, string?> variable) =>
        names.Where(n => !string.IsNullOrEmpty(variable(n))).Select(n => $"{n}={variable(n)}").ToList();

    /// <summary>The wait setting libgomp runs with in this process, and why: the user's variables, else <see cref="DefaultWaitFor"/>.</summary>
    public static string WaitPolicy { get; private set; } = "not loaded";

    static string Load()
    {
        WaitPolicy = ApplyWaitPolicy();
        NativeHeap.Apply();
        KernelSet.ApplyEnvironment();
        if (!OperatingSystem.IsLinux()) return "default";
        string? dir = FindNativeDir();
        if (dir is null) return "default";
        string stock = Path.Combine(dir, BridgeFile);
        var torchAssembly = typeof(torch).Assembly;

        if (NativeLibrary.TryLoad(stock, out var handle))
        {
            Resolve(torchAssembly, handle);
            return "stock";
        }

        string patched = PatchedCopy(stock);
        // libLibTorchSharp's RUNPATH is $ORIGIN: from the cache folder it cannot find libtorch, so load that first
        // by full path; glibc then satisfies the copy's NEEDED entries by SONAME.
        foreach (var dep in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            var p = Path.Combine(dir, dep);
            if (File.Exists(p)) NativeLibrary.Load(p);
        }
        try
        {
            handle = NativeLibrary.Load(patched);
        }
        catch (DllNotFoundException e)
        {
            throw new DllNotFoundException($"could not load TorchSharp's native bridge {stock} nor its patched copy {patched}: {e.Message}", e);
        }
        Resolve(torchAssembly, handle);
        return "patched:" + patched;
    }

    /// <summary>libgomp reads its wait settings once, when it loads (with libtorch): set them now unless the user did.</summary>
    static string ApplyWaitPolicy()
    {
        var user = UserSet(WaitVariables, Environment.GetEnvironmentVariable);
        if (user.Count > 0) return string.Join(", ", user) + " (set by the user)";
        var others = MachineInfo.OtherProcessesCores(LoadWindow);
        var (name, value) = DefaultWaitFor(others);
        // Not inherited: a process this one starts (the reference program, another run) measures its own machine.
        SetIfUnset(name, value, inherited: false);
        var load = others is double c ? $"other processes used {c:0.00} cores at start" : "the machine's load is unknown";
        return $"{name}={value} (the tool's default: {load})";
    }

    /// <summary>
    /// Sets <paramref name="name"/> in the process environment unless it is set already (a user's choice wins), in
    /// .NET's copy and, on Linux, in the C library's, which is the one native code reads (.NET keeps its own copy of
    /// the environment on Unix). Takes effect on native libraries only when set before they load.
    /// </summary>
    /// <param name="inherited">Whether processes this one starts see it too (.NET starts them with its own copy):
    /// true for the kernel-set limits, which a reference run this process starts should share; false for a choice
    /// made for this process alone, such as how its threads wait.</param>
    internal static void SetIfUnset(string name, string value, bool inherited = true)
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name))) return;
        if (inherited || !OperatingSystem.IsLinux()) Environment.SetEnvironmentVariable(name, value);
        if (OperatingSystem.IsLinux()) _ = setenv(name, value, 0);
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    /// <summary>
    /// The address of a symbol exported by this process's <c>libtorch_cpu.so</c> (a C name such as MKL's
    /// <c>vmsSqrt</c>, or a mangled C++ name), loading the natives first; 0 where there is no such library or symbol.
    /// </summary>
    public static nint LibtorchExport(string symbol)
    {
        EnsureLoaded();
        if (!OperatingSystem.IsLinux()) return 0;
        var dir = FindNativeDir();
        if (dir is null || !NativeLibrary.TryLoad(Path.Combine(dir, "libtorch_cpu.so"), out var handle)) return 0;
        return NativeLibrary.TryGetExport(handle, symbol, out var fn) ? fn : 0;
    }

    static void Resolve(Assembly torchAssembly, IntPtr bridge)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(torchAssembly,
                (name, _, _) => name is "LibTorchSharp" or "libLibTorchSharp" or BridgeFile ? bridge : IntPtr.Zero);
        }
        catch (InvalidOperationException)
        {
            // A resolver is already set (another host did it); glibc's SONAME match still reuses our handle.
        }
    }

    /// <summary>Finds the folder that holds libLibTorchSharp.so for this process.</summary>
    public static string? FindNativeDir()
    {
        var roots = new[] { Path.GetDirectoryName(typeof(torch).Assembly.Location), AppContext.BaseDirectory }
            .Where(d => !string.IsNullOrEmpty(d)).Distinct();
        foreach (var root in roots)
        {
            foreach (var candidate in new[] { Path.Combine(root!, "runtimes", "linux-x64", "native"), root! })
                if (File.Exists(Path.Combine(candidate, BridgeFile))) return candidate;
        }
        return null;
    }

    /// <summary>
    /// Writes (once) a copy of <paramref name="stock"/> with <see cref="MarkerVersions"/> weakened, in
    /// <c>$XDG_CACHE_HOME/resnet-mnist/native/&lt;sha256 prefix&gt;/</c> (else <c>~/.cache</c>, else the temp folder),
    /// via a temp file and an atomic rename. Returns its path.
    /// </summary>
    public static string PatchedCopy(string stock)
    {
        var bytes = InputFiles.ReadAllBytes(stock, "a native library", 1L << 30, m => new IOException($"{stock}: {m}"));
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        foreach (var root in CacheRoots())
        {
            try
            {
                var dir = Path.Combine(root, "resnet-mnist", "native", hash);
                var target = Path.Combine(dir, BridgeFile);
                if (File.Exists(target)) return target;
                Directory.CreateDirectory(dir);
                var patched = ElfVersionNeeds.Weaken(bytes, MarkerVersions, out _);
                AtomicFile.WriteAllBytes(target, patched);
                return target;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // try the next cache root
            }
        }
        throw new IOException($"could not write a patched copy of {stock} to any cache folder ({string.Join(", ", CacheRoots())})");
    }

    static IEnumerable<string> CacheRoots()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg)) yield return xdg;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home)) yield return Path.Combine(home, ".cache");
        yield return Path.GetTempPath();
    }
}
