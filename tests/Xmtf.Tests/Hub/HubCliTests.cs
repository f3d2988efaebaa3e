using System.Diagnostics;

namespace Xmtf.Tests.Hub;

/// <summary>The <c>xmtf</c> executable's download, list and rm against the fake Hub, in a child process with its own environment.</summary>
public sealed class HubCliTests : IDisposable
{
    readonly FakeHub _hub = new();
    readonly string _home = Directory.CreateTempSubdirectory("xmtf-hub-cli-").FullName;

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    (int Code, string Out, string Err) Xmtf(params string[] args) => XmtfWith(_hub.Endpoint, args);

    (int Code, string Out, string Err) XmtfWith(string endpoint, params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "xmtf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var v in new[] { "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE" }) psi.Environment.Remove(v);
        psi.Environment["HF_HOME"] = _home;
        psi.Environment["HF_ENDPOINT"] = endpoint;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    [Fact]
    public void Download_list_rm()
    {
        var repo = _hub.Add("test-org/tiny-mt5", "tiny-mt5");
        var snapshot = Path.Combine(_home, "hub", "models--test-org--tiny-mt5", "snapshots", repo.Commit);

        var (code, stdout, stderr) = Xmtf("download", "test-org/tiny-mt5");
        Assert.True(code == 0, stderr);
        Assert.Equal(snapshot, stdout.Trim());
        Assert.Contains($"test-org/tiny-mt5@main: commit {repo.Commit}", stderr);
        Assert.Contains("downloading model.safetensors (1.6 MB)", stderr);
        Assert.Contains("downloaded model.safetensors (1.6 MB in", stderr);

        Assert.Equal((0, snapshot + "\n", ""), XmtfWith("http://127.0.0.1:1", "download", "test-org/tiny-mt5", "--offline", "--quiet"));

        (code, stdout, _) = Xmtf("list");
        Assert.Equal(0, code);
        Assert.Matches($@"test-org/tiny-mt5\s+2\.3 MB\s+main={repo.Commit[..8]}", stdout);

        (code, _, stderr) = Xmtf("download", "test-org/nope");
        Assert.Equal(1, code);
        Assert.StartsWith("xmtf download: error: 'test-org/nope' is neither a local directory nor a model on", stderr);

        Assert.Equal((0, $"removed test-org/tiny-mt5 (2.3 MB) from {Path.Combine(_home, "hub")}\n", ""), Xmtf("rm", "test-org/tiny-mt5"));
        Assert.Contains("no models", Xmtf("list").Out);
        Assert.StartsWith("xmtf rm: error: test-org/tiny-mt5 is not in the cache", Xmtf("rm", "test-org/tiny-mt5").Err);
    }
}
