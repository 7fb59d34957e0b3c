using System.Net;
using NUnit.Framework;
using ResnetMnist.Data;

namespace ResnetMnist.ParityTests.Robustness;

/// <summary><see cref="DatasetFetcher.Fetch"/> over a fake HTTP handler: a wrong file is not kept, offline is a clear error.</summary>
[TestFixture, Category("Robustness")]
public sealed class DatasetFetcherTests
{
    sealed class FakeHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        public List<string> Urls { get; } = [];
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Urls.Add(request.RequestUri!.ToString());
            return Task.FromResult(respond(request));
        }
    }

    [Test]
    public void Md5_mismatch_discards_the_file_and_names_every_mirror()
    {
        var root = TempDir.New("download-md5");
        var handler = new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(new byte[1000]) });
        using var client = new HttpClient(handler);
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.Mnist, root, client: client))!;
        Assert.That(e.Message, Does.Contain("md5").And.Contain("file discarded").And.Contain("download failed from every mirror"));
        Assert.That(handler.Urls, Has.Count.EqualTo(MnistFiles.Mnist.Mirrors.Length), "each mirror is tried once");
        Assert.That(Directory.GetFiles(root, "*", SearchOption.AllDirectories), Is.Empty, "a file that failed its md5 check was kept");
    }

    [Test]
    public void Offline_is_a_clear_data_error()
    {
        var root = TempDir.New("download-offline");
        var handler = new FakeHandler(_ => throw new HttpRequestException("Name or service not known (yann.lecun.com:80)"));
        using var client = new HttpClient(handler);
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.Mnist, root, client: client))!;
        Assert.That(e.Message, Does.Contain("Name or service not known").And.Contain("copy the files into"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
        Assert.That(Directory.GetFiles(root, "*", SearchOption.AllDirectories), Is.Empty);
    }

    [Test]
    public void Offline_leaves_no_empty_dataset_folder_and_suggests_the_sample_only_where_it_exists()
    {
        var root = Path.Combine(TempDir.New("download-nofolder"), "data");
        using var client = new HttpClient(new FakeHandler(_ => throw new HttpRequestException("Name or service not known")));
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.Mnist, root, client: client))!;
        Assert.That(Directory.Exists(root), Is.False, "an empty dataset folder was left behind");
        Assert.That(PackagedFiles.SampleRoot, Is.Not.Null, "the test output carries the packaged sample");
        Assert.That(e.Message, Does.Contain("packaged sample (data.root: sample;").And.Not.Contain(PackagedFiles.SampleRoot!), "the install folder is no place for the user's files");
        var saved = PackagedFiles.BaseDirectory;
        try
        {
            PackagedFiles.BaseDirectory = TempDir.New("no-sample");
            var e2 = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.Mnist, root, client: client))!;
            Assert.That(e2.Message, Does.Not.Contain("sample"), "the sample was suggested although the package lacks it");
            var e3 = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.FashionMnist, root, client: client))!;
            Assert.That(e3.Message, Does.Not.Contain("sample"));
        }
        finally { PackagedFiles.BaseDirectory = saved; }
    }

    [Test]
    public void Http_error_status_is_reported_and_nothing_kept()
    {
        var root = TempDir.New("download-404");
        using var client = new HttpClient(new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.NotFound)));
        var e = Assert.Throws<DataException>(() => DatasetFetcher.Fetch(MnistFiles.Mnist, root, client: client))!;
        Assert.That(e.Message, Does.Contain("404"));
        Assert.That(Directory.GetFiles(root, "*", SearchOption.AllDirectories), Is.Empty);
    }
}
