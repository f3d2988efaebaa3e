using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Xmtf.Tests.Hub;

/// <summary>
/// A Hugging Face Hub on 127.0.0.1 serving fixture directories the way the real one does: the model-info
/// API; <c>resolve/&lt;rev&gt;/&lt;file&gt;</c> with <c>X-Repo-Commit</c> and a git-sha1 <c>ETag</c> for small
/// files, and for LFS files (weights) a redirect to a CDN path with <c>X-Linked-Etag</c> (sha256) and
/// <c>X-Linked-Size</c>; Range requests; 401 RepoNotFound for unknown repos without a token, as the Hub
/// does. The public fields inject faults.
/// </summary>
sealed class FakeHub : IDisposable
{
    public sealed record Repo(string Id, string Dir, string[] Files, string Commit, bool Private = false, bool Gated = false);

    public const string Token = "hf_test_token";
    readonly HttpListener _listener, _cdnListener;
    readonly Dictionary<string, Repo> _repos = new();
    readonly ConcurrentDictionary<string, byte[]> _cdn = new(); // sha256 → content

    public string Endpoint { get; }
    /// <summary>Another origin, as the real CDN is, so the client must not send it the token.</summary>
    readonly string _cdnEndpoint;
    /// <summary>"METHOD path [range] [auth]" of each request, in arrival order.</summary>
    public readonly ConcurrentQueue<string> Requests = new();

    /// <summary>The next <see cref="CutTimes"/> bodies of this file are cut <see cref="CutAt"/> bytes after where they start.</summary>
    public string? CutFile;
    public long CutAt;
    public int CutTimes;
    /// <summary>This file is always served with one byte flipped.</summary>
    public string? CorruptFile;
    /// <summary>Answer this status the next <see cref="FailTimes"/> requests whose path contains <see cref="FailPath"/>.</summary>
    public string? FailPath;
    public int FailStatus, FailTimes;
    /// <summary>Wait before answering anything.</summary>
    public TimeSpan Delay;
    /// <summary>Pause after each 16 kB of a body, so concurrent downloads overlap.</summary>
    public TimeSpan ChunkDelay;

    public FakeHub()
    {
        (_listener, Endpoint) = Listen();
        (_cdnListener, _cdnEndpoint) = Listen();
    }

    (HttpListener, string) Listen()
    {
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try { listener.Start(); }
            catch (HttpListenerException) when (attempt < 5) { continue; } // port taken meanwhile
            _ = Task.Run(() => AcceptLoop(listener));
            return (listener, $"http://127.0.0.1:{port}");
        }
    }

    /// <summary>Serves a fixture directory as repo <paramref name="id"/>, optionally only the files <paramref name="keep"/> accepts.</summary>
    public Repo Add(string id, string fixture, Func<string, bool>? keep = null, bool isPrivate = false, bool gated = false)
    {
        var dir = Fixtures.Path(fixture);
        var files = Directory.GetFiles(dir).Select(Path.GetFileName).OfType<string>().Where(keep ?? (_ => true)).Order().ToArray();
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id + fixture)));
        return _repos[id] = new Repo(id, dir, files, commit, isPrivate, gated);
    }

    public static bool IsLfs(string file) => file.EndsWith(".safetensors") || file.EndsWith(".bin");
    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
    /// <summary>The etag the Hub gives a non-LFS file: its git blob id.</summary>
    public static string GitSha1(byte[] b) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));
    public static string Etag(string path) => IsLfs(path) ? Sha256(File.ReadAllBytes(path)) : GitSha1(File.ReadAllBytes(path));

    async Task AcceptLoop(HttpListener listener)
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); }
            catch (Exception) { return; } // stopped
            _ = Task.Run(async () =>
            {
                try { await Handle(ctx); }
                catch (Exception) { ctx.Response.Abort(); } // the client went away, or the test ended
            });
        }
    }

    async Task Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        var path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        var auth = req.Headers["Authorization"];
        Requests.Enqueue($"{req.HttpMethod} {path} {req.Headers["Range"]} {auth}".TrimEnd());
        if (Delay > TimeSpan.Zero) await Task.Delay(Delay);
        if (FailPath is { } fp && path.Contains(fp) && Interlocked.Decrement(ref FailTimes) >= 0) { await Status(ctx, FailStatus); return; }

        if (path.StartsWith("/cdn/"))
        {
            if (auth is not null) { await Status(ctx, 400); return; } // the token must never leave the Hub
            var sha = path["/cdn/".Length..];
            await Body(ctx, _cdn[sha], req.QueryString["file"]!);
            return;
        }
        bool api = path.StartsWith("/api/models/");
        var parts = (api ? path["/api/models/".Length..] : path[1..]).Split('/');
        // org/name/(revision|resolve)/rev[/file]
        if (parts.Length < 4 || parts[2] != (api ? "revision" : "resolve")) { await Status(ctx, 404); return; }
        if (!_repos.TryGetValue($"{parts[0]}/{parts[1]}", out var repo) || repo.Private && auth != $"Bearer {Token}")
        {
            // The Hub does not say whether a repo exists to someone without access.
            await Status(ctx, auth is null || repo is not null ? 401 : 404, repo is null ? "RepoNotFound" : null);
            return;
        }
        if (repo.Gated) { await Status(ctx, 403, "GatedRepo"); return; }
        if (parts[3] != "main" && parts[3] != repo.Commit) { await Status(ctx, 404, "RevisionNotFound"); return; }
        if (api)
        {
            var json = JsonSerializer.Serialize(new { id = repo.Id, sha = repo.Commit, siblings = repo.Files.Select(f => new { rfilename = f }) });
            res.ContentType = "application/json";
            await Write(ctx, Encoding.UTF8.GetBytes(json));
            return;
        }
        var file = string.Join('/', parts[4..]);
        if (!repo.Files.Contains(file)) { await Status(ctx, 404, "EntryNotFound"); return; }
        var bytes = await File.ReadAllBytesAsync(Path.Combine(repo.Dir, file));
        res.Headers["X-Repo-Commit"] = repo.Commit;
        if (IsLfs(file))
        {
            var sha = Sha256(bytes);
            _cdn[sha] = bytes;
            res.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            res.Headers["X-Linked-Size"] = bytes.Length.ToString();
            res.Headers["ETag"] = $"\"{GitSha1(bytes)}\""; // the pointer file's, which clients must not use
            res.Redirect($"{_cdnEndpoint}/cdn/{sha}?file={Uri.EscapeDataString(file)}");
            res.Close();
            return;
        }
        res.Headers["ETag"] = $"\"{GitSha1(bytes)}\"";
        await Body(ctx, bytes, file);
    }

    /// <summary>Sends a file honouring Range, HEAD, and the cut/corrupt/slow faults.</summary>
    async Task Body(HttpListenerContext ctx, byte[] bytes, string file)
    {
        var res = ctx.Response;
        if (file == CorruptFile) { bytes = (byte[])bytes.Clone(); bytes[bytes.Length / 2] ^= 0xFF; }
        long from = 0;
        if (ctx.Request.Headers["Range"] is { } range && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        res.ContentLength64 = bytes.Length - from;
        if (ctx.Request.HttpMethod == "HEAD") { res.Close(); return; }
        long cut = file == CutFile && Interlocked.Decrement(ref CutTimes) >= 0 ? from + CutAt : long.MaxValue;
        var output = res.OutputStream;
        for (long at = from; at < bytes.Length; at += 16384)
        {
            int n = (int)Math.Min(16384, bytes.Length - at);
            if (at + n > cut)
            {
                await output.WriteAsync(bytes.AsMemory((int)at, (int)(cut - at)));
                await output.FlushAsync();
                res.Abort();
                return;
            }
            await output.WriteAsync(bytes.AsMemory((int)at, n));
            if (ChunkDelay > TimeSpan.Zero) await Task.Delay(ChunkDelay);
        }
        res.Close();
    }

    static async Task Status(HttpListenerContext ctx, int code, string? errorCode = null)
    {
        ctx.Response.StatusCode = code;
        if (errorCode is not null) ctx.Response.Headers["X-Error-Code"] = errorCode;
        await Write(ctx, Encoding.UTF8.GetBytes($"{{\"error\":\"{errorCode ?? code.ToString()}\"}}"));
    }

    static async Task Write(HttpListenerContext ctx, byte[] body)
    {
        ctx.Response.ContentLength64 = body.Length;
        if (ctx.Request.HttpMethod != "HEAD") await ctx.Response.OutputStream.WriteAsync(body);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        _listener.Close();
        _cdnListener.Close();
    }
}
