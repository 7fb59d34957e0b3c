using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using ResnetMnist.Data;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary>
/// <see cref="DatasetFetcher.Fetch"/> against a real HTTP server on 127.0.0.1 serving real files (the packaged MNIST
/// sample, the CIFAR-100 fixture's archive): mirrors in order past a dead one, md5 checked, the tar.gz unpacked into
/// its folder; a wrong md5, a cut-off transfer or a failure after earlier files leave nothing this fetch created and
/// keep everything that was there before. No internet.
/// </summary>
[TestFixture, Category("Robustness"), NonParallelizable]
public sealed class DatasetFetcherServerTests
{
    /// <summary>Serves <see cref="Files"/> by URL path; a path in <see cref="Cut"/> sends half its bytes under the full Content-Length, then drops the connection.</summary>
    sealed class Server : IDisposable
    {
        readonly HttpListener _listener = new();
        public Dictionary<string, byte[]> Files { get; } = [];
        public HashSet<string> Cut { get; } = [];
        public List<string> Requests { get; } = [];
        public string Url { get; }

        public Server()
        {
            Url = $"http://127.0.0.1:{FreePort()}/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(Loop);
        }

        async Task Loop()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await _listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                var path = ctx.Request.Url!.AbsolutePath.TrimStart('/');
                lock (Requests) Requests.Add(path);
                try
                {
                    if (!Files.TryGetValue(path, out var body)) { ctx.Response.StatusCode = 404; ctx.Response.Close(); continue; }
                    ctx.Response.ContentLength64 = body.Length;
                    if (Cut.Contains(path))
                    {
                        ctx.Response.OutputStream.Write(body, 0, body.Length / 2);
                        ctx.Response.OutputStream.Flush();
                        ctx.Response.Abort();
                        continue;
                    }
                    ctx.Response.OutputStream.Write(body);
                    ctx.Response.Close();
                }
                catch (Exception e) when (e is HttpListenerException or IOException) { }
            }
        }

        public void Dispose() => _listener.Close();
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A mirror where nothing listens (connection refused).</summary>
    static string DeadMirror() => $"http://127.0.0.1:{FreePort()}/";

    static readonly string SampleRaw = Repo.Path("data", "MNIST", "raw");

    /// <summary>MNIST's files list with the packaged sample's md5s and the given mirrors.</summary>
    static MnistFiles Sample(params string[] mirrors) =>
        MnistFiles.Mnist with
        {
            Mirrors = mirrors,
            Md5 = MnistFiles.All.ToDictionary(n => n, n => DatasetFetcher.Md5Of(Path.Combine(SampleRaw, n + ".gz"))),
        };

    static void Serve(Server server, string prefix = "")
    {
        foreach (var n in MnistFiles.All) server.Files[prefix + n + ".gz"] = File.ReadAllBytes(Path.Combine(SampleRaw, n + ".gz"));
    }

    static string[] Tree(string root) =>
        Directory.Exists(root) ? Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal).ToArray() : [];

    [Test]
    public void A_dead_first_mirror_is_passed_over_and_every_file_arrives_md5_checked()
    {
        using var server = new Server();
        Serve(server, "mnist/");
        var files = Sample(DeadMirror(), server.Url + "mnist/");
        var root = Path.Combine(TempDir.New("fetch-mirrors"), "data");
        var seen = new List<string>();
        using var client = new HttpClient();
        DatasetFetcher.Fetch(files, root, new SyncProgress(p => seen.Add(p.File)), client);
        Assert.That(Tree(root), Is.EqualTo(new[] { "MNIST", "MNIST/raw" }.Concat(MnistFiles.All.Select(n => $"MNIST/raw/{n}.gz")).Order(StringComparer.Ordinal).ToArray()));
        foreach (var n in MnistFiles.All)
            Assert.That(File.ReadAllBytes(Path.Combine(root, "MNIST", "raw", n + ".gz")), Is.EqualTo(server.Files["mnist/" + n + ".gz"]), n);
        Assert.That(server.Requests, Is.EqualTo(MnistFiles.All.Select(n => $"mnist/{n}.gz").ToArray()), "one request per file, in the list's order, after the dead mirror");
        Assert.That(seen.Distinct(), Is.EqualTo(MnistFiles.All.Select(n => n + ".gz").ToArray()), "progress names each file");
        var split = files.Read(root, train: false, 1, 28, 28);
        Assert.That(split.Count, Is.EqualTo(1000), "the fetched files read");
        Assert.That(files.Verify(root).Select(v => (v.Ok, v.Detail.Contains("md5 matches"))), Has.All.EqualTo((true, true)));

        server.Requests.Clear();
        DatasetFetcher.Fetch(files, root, client: client);
        Assert.That(server.Requests, Is.Empty, "nothing is fetched again once it is there");
    }

    [Test]
    public void A_failure_after_earlier_files_removes_them_and_keeps_what_was_there()
    {
        using var server = new Server();
        Serve(server);
        server.Files.Remove(MnistFiles.TestLabels + ".gz");                    // the last file: 404 on the only mirror
        var files = Sample(server.Url);
        var root = TempDir.New("fetch-partial");
        var raw = Directory.CreateDirectory(Path.Combine(root, "MNIST", "raw")).FullName;
        var mine = Path.Combine(raw, MnistFiles.TrainLabels);                  // the user's own raw copy: not fetched, not touched
        File.WriteAllBytes(mine, [1, 2, 3]);
        var other = Path.Combine(root, "notes.txt");
        File.WriteAllText(other, "mine");
        using var client = new HttpClient();
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(files, root, client: client))!;
        Assert.That(e.Message, Does.StartWith(Path.Combine(raw, MnistFiles.TestLabels + ".gz") + ": download failed from every mirror").And.Contain("404").And.Not.Contain("\n"));
        Assert.That(server.Requests, Is.EqualTo(new[] { MnistFiles.TrainImages, MnistFiles.TestImages, MnistFiles.TestLabels }.Select(n => n + ".gz").ToArray()));
        Assert.That(Tree(root), Is.EqualTo(new[] { "MNIST", "MNIST/raw", "MNIST/raw/" + MnistFiles.TrainLabels, "notes.txt" }),
            "the files this fetch downloaded are gone; the folders and files that were there stay");
        Assert.That(File.ReadAllBytes(mine), Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    static readonly string Cifar100Archive = Repo.Path("parity-tests", "data", "cifar100-fixture", "cifar-100-python.tar.gz");

    /// <summary>CIFAR-100's file list pointing at the server, with the fixture's md5s (train, test, meta, archive).</summary>
    static CifarFiles Cifar100At(Server server)
    {
        var fixture = Repo.Path("parity-tests", "data", "cifar100-fixture", "p2", "cifar-100-python");
        string Md5(string n) => DatasetFetcher.Md5Of(Path.Combine(fixture, n));
        server.Files["kriz/cifar-100-python.tar.gz"] = File.ReadAllBytes(Cifar100Archive);
        return CifarFiles.Cifar100 with
        {
            Url = server.Url + "kriz/cifar-100-python.tar.gz",
            ArchiveMd5 = DatasetFetcher.Md5Of(Cifar100Archive),
            TrainList = [("train", Md5("train"))], TestList = [("test", Md5("test"))], MetaMd5 = Md5("meta"),
        };
    }

    [Test]
    public void A_tar_gz_is_fetched_unpacked_into_its_folder_and_files_already_there_are_kept()
    {
        using var server = new Server();
        var files = Cifar100At(server);
        var root = TempDir.New("fetch-cifar100");
        var folder = Directory.CreateDirectory(Path.Combine(root, "cifar-100-python")).FullName;
        File.WriteAllBytes(Path.Combine(folder, "meta"), File.ReadAllBytes(Path.Combine(Repo.Path("parity-tests", "data", "cifar100-fixture", "p2", "cifar-100-python"), "meta")));
        var metaTime = File.GetLastWriteTimeUtc(Path.Combine(folder, "meta")).AddMinutes(-5);
        File.SetLastWriteTimeUtc(Path.Combine(folder, "meta"), metaTime);
        using var client = new HttpClient();
        DatasetFetcher.Fetch(files, root, client: client);
        Assert.That(Tree(root), Is.EqualTo(new[] { "cifar-100-python", "cifar-100-python.tar.gz", "cifar-100-python/meta", "cifar-100-python/test", "cifar-100-python/train" }));
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(folder, "meta")), Is.EqualTo(metaTime), "the file that was there is not replaced");
        Assert.That(files.Verify(root).Select(v => (v.Ok, v.Detail.Contains("md5 matches"))), Has.All.EqualTo((true, true)));
        Assert.That(files.Read(root, train: true, 3, 32, 32).Count, Is.EqualTo(40));
    }

    [TestCase("wrong md5"), TestCase("cut off")]
    public void A_bad_archive_leaves_nothing_and_keeps_what_was_there(string how)
    {
        using var server = new Server();
        var files = Cifar100At(server);
        if (how == "wrong md5") files = files with { ArchiveMd5 = CifarFiles.Cifar100.ArchiveMd5 };
        else server.Cut.Add("kriz/cifar-100-python.tar.gz");
        var parent = TempDir.New("fetch-bad");
        var root = Path.Combine(parent, "new", "data");
        using var client = new HttpClient();
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(files, root, client: client))!;
        Assert.That(e.Message, Does.StartWith(Path.Combine(root, "cifar-100-python.tar.gz") + ": download failed from every mirror (" + files.Url + ": ")
            .And.EndWith("; copy torchvision's cifar-100-python.tar.gz or its cifar-100-python folder into " + root + " by hand").And.Not.Contain("\n"));
        Assert.That(e.Message, how == "wrong md5" ? Does.Contain("md5 " + DatasetFetcher.Md5Of(Cifar100Archive) + " != expected " + CifarFiles.Cifar100.ArchiveMd5 + " (file discarded)")
            : Does.Not.Contain("md5"));
        Assert.That(Directory.Exists(Path.Combine(parent, "new")), Is.False, "the folders this fetch created are gone");
        Assert.That(Directory.GetFileSystemEntries(parent), Is.Empty, "no temp file is left");

        // The same into a root that exists and holds a file of the user's: it stays, nothing is added.
        var existing = TempDir.New("fetch-bad-existing");
        File.WriteAllText(Path.Combine(existing, "notes.txt"), "mine");
        Assert.Throws<DataException>(() => DatasetFetcher.Fetch(files, existing, client: client));
        Assert.That(Tree(existing), Is.EqualTo(new[] { "notes.txt" }));
    }

    /// <summary>Reports synchronously (<see cref="Progress{T}"/> posts to the thread pool).</summary>
    sealed class SyncProgress(Action<(string File, long Done, long? Total)> report) : IProgress<(string File, long Done, long? Total)>
    {
        public void Report((string File, long Done, long? Total) value) => report(value);
    }
}
