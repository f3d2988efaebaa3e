using System.Collections.Concurrent;
using Xmtf.Hub;
using Xmtf.IO;

namespace Xmtf.Tests.Hub;

public sealed class HubTests : IDisposable
{
    readonly FakeHub _hub = new();
    readonly string _cache = Directory.CreateTempSubdirectory("xmtf-hub-").FullName;
    readonly ConcurrentQueue<string> _log = new();

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_cache, recursive: true);
    }

    HubOptions Options(string? endpoint = null) => new()
    {
        Endpoint = endpoint ?? _hub.Endpoint,
        CacheDir = _cache,
        Timeout = TimeSpan.FromSeconds(5),
        MaxRetries = 3,
        RetryDelay = TimeSpan.FromMilliseconds(5),
        Log = _log.Enqueue,
    };

    string Resolve(string model, HubOptions? options = null) => ModelLocator.Resolve(model, options ?? Options());

    static void AssertSameFiles(string fixture, string dir, params string[] files)
    {
        Assert.Equal(files.Order(), Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        foreach (var f in files) Assert.Equal(File.ReadAllBytes(Fixtures.Path(fixture, f)), File.ReadAllBytes(Path.Combine(dir, f)));
    }

    static readonly string[] Mt5Files =
        ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json"];

    [Fact]
    public void Produces_the_python_cache_layout()
    {
        var repo = _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        var dir = Resolve("test-org/tiny-mt5");

        var folder = Path.Combine(_cache, "models--test-org--tiny-mt5");
        Assert.Equal(Path.Combine(folder, "snapshots", repo.Commit), dir);
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(folder, "refs", "main")));
        // safetensors preferred: pytorch_model.bin and files a model does not need are not fetched
        AssertSameFiles("tiny-mt5", dir, Mt5Files);
        foreach (var f in Mt5Files)
        {
            var etag = FakeHub.Etag(Fixtures.Path("tiny-mt5", f));
            Assert.Equal($"../../blobs/{etag}", new FileInfo(Path.Combine(dir, f)).LinkTarget);
            Assert.True(File.Exists(Path.Combine(_cache, ".locks", "models--test-org--tiny-mt5", etag + ".lock")));
        }
        Assert.Equal(Mt5Files.Length, Directory.GetFiles(Path.Combine(folder, "blobs")).Length); // no .incomplete left
        Assert.Contains(_hub.Requests, r => r.StartsWith("GET /cdn/")); // weights came through the redirect
        using var checkpoint = Checkpoint.Open(dir);
        Assert.Equal(["model.safetensors"], checkpoint.WeightFiles);
    }

    [Fact]
    public void Downloads_every_shard_of_an_index_and_bin_when_there_is_no_safetensors()
    {
        _hub.Add("test-org/sharded", "tiny-mt5-bf16-sharded");
        _hub.Add("test-org/bloom-bin", "tiny-bloom", keep: f => f != "model.safetensors" && f != "golden.json");

        var sharded = Resolve("test-org/sharded");
        Assert.Contains("model-00002-of-00002.safetensors", Directory.GetFiles(sharded).Select(Path.GetFileName));
        using (var c = Checkpoint.Open(sharded)) Assert.Equal(2, c.WeightFiles.Count);
        var bin = Resolve("test-org/bloom-bin");
        AssertSameFiles("tiny-bloom", bin,
            "config.json", "generation_config.json", "pytorch_model.bin", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json");
        using (var c = Checkpoint.Open(bin)) Assert.Equal(["pytorch_model.bin"], c.WeightFiles);
    }

    [Fact]
    public void Reuses_the_cache_offline_and_when_the_hub_is_unreachable()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        var dir = Resolve("test-org/tiny-mt5");
        int requests = _hub.Requests.Count;
        Assert.Equal(dir, Resolve("test-org/tiny-mt5")); // online again: only the model-info call
        Assert.Equal(requests + 1, _hub.Requests.Count);
        _hub.Dispose();

        Assert.Equal(dir, Resolve("test-org/tiny-mt5", Options() with { Offline = true }));
        Assert.Equal(dir, Resolve("test-org/tiny-mt5", Options("http://127.0.0.1:1")));
        Assert.Contains(_log, l => l.Contains("cannot reach 127.0.0.1:1") && l.Contains("using the cached"));
        Assert.Equal(dir, Resolve(dir)); // a directory is used as is
    }

    [Fact]
    public void Not_cached_and_offline_or_unreachable_says_what_to_do()
    {
        var e = Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5", Options() with { Offline = true }));
        Assert.Contains("offline mode is on", e.Message);
        Assert.Contains("local model directory", e.Message);
        e = Assert.Throws<HubUnreachableException>(() => Resolve("test-org/tiny-mt5", Options("http://127.0.0.1:1")));
        Assert.Contains("is not in the cache", e.Message);
        Assert.Contains("--offline", e.Message);
    }

    [Fact]
    public void Resumes_a_cut_connection_and_a_partial_file_left_by_a_crash()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        // Cut 5 times, more than MaxRetries: retries that make progress do not count against it.
        (_hub.CutFile, _hub.CutAt, _hub.CutTimes) = ("model.safetensors", 300_000, 5);
        AssertSameFiles("tiny-mt5", Resolve("test-org/tiny-mt5"), Mt5Files);
        Assert.Contains(_hub.Requests, r => r.StartsWith("GET /cdn/") && r.Contains("bytes=") && !r.Contains("bytes=0-"));
        Assert.Contains(_log, l => l.Contains("connection lost after") && l.Contains("retrying in"));

        // A crashed process leaves blobs/<sha256>.incomplete; the next run asks only for the rest.
        var weights = File.ReadAllBytes(Fixtures.Path("tiny-mt5", "model.safetensors"));
        var folder = Path.Combine(_cache, "models--test-org--tiny-mt5");
        Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(Path.Combine(folder, "blobs"));
        File.WriteAllBytes(Path.Combine(folder, "blobs", FakeHub.Sha256(weights) + ".incomplete"), weights[..1000]);
        AssertSameFiles("tiny-mt5", Resolve("test-org/tiny-mt5"), Mt5Files);
        Assert.Contains(_hub.Requests, r => r.Contains("bytes=1000-"));
        Assert.Contains(_log, l => l.Contains("test-org/tiny-mt5/model.safetensors: resuming at 1,000 of"));
    }

    [Fact]
    public void A_corrupted_body_is_rejected_and_not_cached()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        _hub.CorruptFile = "model.safetensors";
        var e = Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5"));
        Assert.Contains("test-org/tiny-mt5/model.safetensors: checksum mismatch: expected sha256", e.Message);
        Assert.Contains("discarded", e.Message);
        var folder = Path.Combine(_cache, "models--test-org--tiny-mt5");
        var sha = FakeHub.Sha256(File.ReadAllBytes(Fixtures.Path("tiny-mt5", "model.safetensors")));
        Assert.Empty(Directory.GetFiles(Path.Combine(folder, "blobs"), sha + "*"));
        Assert.False(File.Exists(Path.Combine(folder, "refs", "main")));
        Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5", Options() with { Offline = true }));
    }

    [Fact]
    public void Retries_server_errors_then_gives_up_with_a_message()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        (_hub.FailPath, _hub.FailStatus, _hub.FailTimes) = ("/resolve/", 503, 2);
        AssertSameFiles("tiny-mt5", Resolve("test-org/tiny-mt5"), Mt5Files);
        Assert.Contains(_log, l => l.Contains("answered 503") && l.Contains("retrying in"));

        (_hub.FailPath, _hub.FailStatus, _hub.FailTimes) = ("/api/", 500, 100);
        var e = Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5@" + new string('a', 40)));
        Assert.Contains("answered 500", e.Message);
        Assert.Contains("after 3 retries", e.Message);
    }

    [Fact]
    public void A_slow_server_times_out()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        _hub.Delay = TimeSpan.FromSeconds(2);
        var e = Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5", Options() with { Timeout = TimeSpan.FromMilliseconds(100), MaxRetries = 1 }));
        Assert.Contains("no answer from", e.Message);
        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", e.Message);
    }

    [Fact]
    public void Http_errors_say_what_to_do()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        _hub.Add("test-org/private", "tiny-mt5", isPrivate: true);
        _hub.Add("test-org/gated", "tiny-mt5", gated: true);
        _hub.Add("test-org/no-weights", "tiny-mt5", keep: f => f.EndsWith(".json"));
        string Error(string model, HubOptions? o = null) => Assert.Throws<XmtfException>(() => Resolve(model, o)).Message;

        Assert.Contains("'test-org/nope' is neither a local directory nor a model on", Error("test-org/nope"));
        Assert.Contains("'test-org/nope' is neither", Error("test-org/nope", Options() with { Token = FakeHub.Token }));
        Assert.Contains("revision 'v9' not found in test-org/tiny-mt5", Error("test-org/tiny-mt5@v9"));
        Assert.Contains("needs a token (401)", Error("test-org/private"));
        Assert.Contains("HF_TOKEN=hf_", Error("test-org/private"));
        Assert.Contains("rejected the token", Error("test-org/private", Options() with { Token = "hf_wrong" }));
        Assert.Contains("test-org/gated is gated", Error("test-org/gated"));
        Assert.Contains("has no complete weights", Error("test-org/no-weights"));
        Assert.Contains("neither a local directory nor a Hub model id", Error("./no/such/dir"));

        var dir = Resolve("test-org/private", Options() with { Token = FakeHub.Token });
        AssertSameFiles("tiny-mt5", dir, Mt5Files);
        Assert.DoesNotContain(_hub.Requests, r => r.StartsWith("GET /cdn/") && r.Contains("Bearer")); // the token stays with the Hub
    }

    [Fact]
    public async Task Two_clients_downloading_the_same_repo_do_not_corrupt_it()
    {
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        _hub.ChunkDelay = TimeSpan.FromMilliseconds(2);
        var dirs = await Task.WhenAll(Task.Run(() => Resolve("test-org/tiny-mt5")), Task.Run(() => Resolve("test-org/tiny-mt5")));
        Assert.Equal(dirs[0], dirs[1]);
        AssertSameFiles("tiny-mt5", dirs[0], Mt5Files);
        Assert.Equal(Mt5Files.Length, Directory.GetFiles(Path.Combine(_cache, "models--test-org--tiny-mt5", "blobs")).Length);
    }

    [Fact]
    public void A_full_disk_is_reported()
    {
        if (!File.Exists("/dev/full")) return; // Linux only: writes to /dev/full fail with ENOSPC
        _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        var sha = FakeHub.Sha256(File.ReadAllBytes(Fixtures.Path("tiny-mt5", "model.safetensors")));
        var blobs = Directory.CreateDirectory(Path.Combine(_cache, "models--test-org--tiny-mt5", "blobs")).FullName;
        File.CreateSymbolicLink(Path.Combine(blobs, sha + ".incomplete"), "/dev/full");
        var e = Assert.Throws<XmtfException>(() => Resolve("test-org/tiny-mt5"));
        Assert.Contains("disk full while downloading test-org/tiny-mt5/model.safetensors", e.Message);
        Assert.Contains("HF_HUB_CACHE", e.Message);
    }

    [Theory]
    [InlineData("org/name", null, "org/name", "main")]
    [InlineData("org/name@v1.0", null, "org/name", "v1.0")]
    [InlineData("org/name", "dev", "org/name", "dev")]
    [InlineData("t5-small", null, "t5-small", "main")]
    public void Parses_hub_ids(string arg, string? revision, string repo, string expectedRevision) =>
        Assert.Equal((repo, expectedRevision), ModelLocator.ParseId(arg, revision));

    [Theory]
    [InlineData("org/name@")]
    [InlineData("a/b/c")]
    [InlineData("org--x/name")]
    [InlineData("../name")]
    public void Rejects_what_is_not_a_hub_id(string arg) =>
        Assert.Contains("neither a local directory nor a Hub model id", Assert.Throws<XmtfException>(() => ModelLocator.ParseId(arg)).Message);

    [Fact]
    public void Reads_the_same_environment_as_huggingface_hub()
    {
        var env = new Dictionary<string, string> { ["HF_HOME"] = "/h", ["HF_TOKEN"] = "hf_x", ["HF_HUB_OFFLINE"] = "1", ["HF_ENDPOINT"] = "http://mirror/" };
        var o = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(("/h/hub", "hf_x", true, "http://mirror"), (o.CacheDir, o.Token, o.Offline, o.Endpoint));
        env["HF_HUB_CACHE"] = "/c";
        Assert.Equal("/c", HubOptions.FromEnvironment(k => env.GetValueOrDefault(k)).CacheDir);
    }
}
