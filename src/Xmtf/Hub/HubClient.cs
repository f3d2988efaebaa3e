using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Xmtf.Hub;

/// <summary>The network could not be reached at all; the message says so and what to do instead.</summary>
public sealed class HubUnreachableException(string message, Exception inner) : XmtfException(message, inner);

/// <summary>
/// Downloads models from the Hugging Face Hub into the huggingface_hub cache, speaking the protocol Python's
/// client uses: the model-info API resolves a revision to a commit and lists files; <c>HEAD resolve/&lt;commit&gt;/&lt;file&gt;</c>
/// gives each file's etag and size (<c>X-Linked-Etag</c>/<c>X-Linked-Size</c> for LFS files, whose etag is
/// their sha256); <c>GET</c> follows the redirect to the CDN and resumes with Range.
/// </summary>
public sealed partial class HubClient(HubOptions options) : IDisposable
{
    readonly HubOptions _o = options;
    // Redirects are followed by hand: HEAD must stop at the CDN redirect, whose headers describe the LFS file.
    readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };

    /// <summary>The cache this client reads and fills.</summary>
    public HubCache Cache { get; } = new(options.CacheDir);

    /// <summary>A file's blob identity and size, from its HEAD.</summary>
    sealed record FileMeta(string Etag, long Size, bool IsLfs);

    /// <summary>A failure worth retrying: 5xx, 429, a timeout, a connection cut mid-response.</summary>
    sealed class TransientException(string message, Exception? inner = null) : Exception(message, inner);

    [GeneratedRegex("^[0-9a-f]{64}$")] private static partial Regex Sha256Hex();
    [GeneratedRegex(@"^[\w.-]+$")] private static partial Regex SafeEtag();

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;</c> hold everything the model needs, downloading what is missing, and
    /// returns that directory. Offline, or when the Hub cannot be reached, a complete cached snapshot is used.
    /// </summary>
    public async Task<string> DownloadModelAsync(string repoId, string revision, CancellationToken ct = default)
    {
        if (_o.Offline)
            return await CachedModelAsync(repoId, revision) ?? throw new XmtfException(
                $"{repoId}@{revision} is not in the cache ({Cache.Root}) and offline mode is on (--offline or HF_HUB_OFFLINE=1): " +
                $"download it once with network access ('xmtf download {repoId}'), or pass a local model directory");
        string commit;
        IReadOnlySet<string> files;
        try { (commit, files) = await GetRepoInfoAsync(repoId, revision, ct); }
        catch (HubUnreachableException e)
        {
            var cached = await CachedModelAsync(repoId, revision) ?? throw new HubUnreachableException(
                $"{e.Message}, and {repoId}@{revision} is not in the cache ({Cache.Root}): check the network connection (and HF_ENDPOINT), " +
                "or pass a local model directory; --offline (HF_HUB_OFFLINE=1) uses only the cache", e);
            _o.Log?.Invoke($"{e.Message}; using the cached {repoId}@{revision}");
            return cached;
        }
        _o.Log?.Invoke($"{repoId}@{revision}: commit {commit}");
        if (!files.Contains("config.json"))
            throw new XmtfException($"{repoId}@{revision} has no config.json: is it a transformers model?");
        foreach (var f in ModelFiles.Metadata.Where(files.Contains)) await DownloadFileAsync(repoId, commit, f, ct);
        var weights = await ModelFiles.WeightsAsync(files, async index => await File.ReadAllTextAsync(await DownloadFileAsync(repoId, commit, index, ct), ct))
            ?? throw new XmtfException($"{repoId}@{revision} has no complete weights (model.safetensors, pytorch_model.bin, or an index with all its shards)");
        foreach (var f in weights) await DownloadFileAsync(repoId, commit, f, ct);
        Cache.WriteRef(repoId, revision, commit);
        return Cache.SnapshotDir(repoId, commit);
    }

    /// <summary>The cached snapshot of a revision if it holds a config and complete weights, else null.</summary>
    public async Task<string?> CachedModelAsync(string repoId, string revision)
    {
        if (Cache.CachedCommit(repoId, revision) is not { } commit) return null;
        var dir = Cache.SnapshotDir(repoId, commit);
        if (!Directory.Exists(dir)) return null;
        // File.Exists follows the symlinks, so a link whose blob was deleted does not count.
        var files = Directory.GetFiles(dir).Where(File.Exists).Select(f => Path.GetFileName(f)).ToHashSet();
        return files.Contains("config.json") && await ModelFiles.WeightsAsync(files, f => File.ReadAllTextAsync(Path.Combine(dir, f))) is not null ? dir : null;
    }

    /// <summary>Resolves a branch, tag or commit to a commit hash and lists the repo's files (the model-info API).</summary>
    public async Task<(string Commit, IReadOnlySet<string> Files)> GetRepoInfoAsync(string repoId, string revision, CancellationToken ct = default)
    {
        var url = $"{_o.Endpoint}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}";
        var json = await WithRetries($"{repoId}@{revision}", async () =>
        {
            using var resp = await SendAsync(HttpMethod.Get, url, repoId, revision, null, 0, ct);
            try { return JsonNode.Parse(await resp.Content.ReadAsStringAsync(ct)); }
            catch (System.Text.Json.JsonException) { return null; } // reported below as not a Hub
        }, ct);
        var commit = json?["sha"]?.GetValue<string>();
        var siblings = (json?["siblings"] as JsonArray)?.Select(s => s?["rfilename"]?.GetValue<string>()).OfType<string>().ToHashSet();
        if (commit is null || !HubCache.CommitHash().IsMatch(commit) || siblings is null)
            throw new XmtfException($"{url} did not answer with a model's sha and siblings: is HF_ENDPOINT ({_o.Endpoint}) a Hugging Face Hub?");
        return (commit, siblings);
    }

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> exist, downloading and verifying its blob if needed, and
    /// returns its path. A lock per blob keeps two processes from writing the same file.
    /// </summary>
    public async Task<string> DownloadFileAsync(string repoId, string commit, string file, CancellationToken ct = default)
    {
        // File names come from the server (siblings, an index's weight_map): none may leave the snapshot.
        if (Path.IsPathRooted(file) || file.Split('/', '\\').Any(part => part is "" or "." or ".."))
            throw new XmtfException($"{repoId}: refusing the file name '{file}', which would leave the cache");
        var pointer = Path.Combine(Cache.SnapshotDir(repoId, commit), file);
        if (File.Exists(pointer)) return pointer; // a commit's files never change
        var url = $"{_o.Endpoint}/{repoId}/resolve/{commit}/{Uri.EscapeDataString(file).Replace("%2F", "/")}";
        var meta = await WithRetries($"{repoId}/{file}", () => HeadAsync(url, repoId, commit, file, ct), ct);
        var blob = Cache.BlobPath(repoId, meta.Etag);
        using (await LockAsync(Cache.LockPath(repoId, meta.Etag), file, ct))
        {
            if (!File.Exists(blob)) await DownloadBlobAsync(url, blob, repoId, commit, file, meta, ct);
            Cache.LinkSnapshot(repoId, commit, file, blob);
        }
        return pointer;
    }

    async Task<FileMeta> HeadAsync(string url, string repoId, string commit, string file, CancellationToken ct)
    {
        using var r = await SendAsync(HttpMethod.Head, url, repoId, commit, file, 0, ct);
        string? H(string name) => r.Headers.TryGetValues(name, out var v) ? v.First() : null;
        var linked = H("X-Linked-Etag");
        var etag = (linked ?? H("ETag"))?.Replace("W/", "").Trim('"');
        var size = long.TryParse(H("X-Linked-Size"), out var s) ? s : r.Content.Headers.ContentLength;
        if (etag is null || !SafeEtag().IsMatch(etag) || size is null)
            throw new XmtfException($"{url} gave no usable ETag and size: is HF_ENDPOINT ({_o.Endpoint}) a Hugging Face Hub?");
        return new FileMeta(etag, size.Value, linked is not null);
    }

    /// <summary>
    /// Fills <c>&lt;blob&gt;.incomplete</c>, resuming where an earlier try stopped, checks size and sha256, then
    /// renames it into place, so a blob is either complete and verified or absent.
    /// </summary>
    async Task DownloadBlobAsync(string url, string blob, string repoId, string commit, string file, FileMeta meta, CancellationToken ct)
    {
        var what = $"{repoId}/{file}";
        var part = blob + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        await WithRetries(what, async () =>
        {
            long have = File.Exists(part) ? new FileInfo(part).Length : 0;
            if (have > meta.Size) have = 0;
            if (have > 0 && have < meta.Size) _o.Log?.Invoke($"{what}: resuming at {have:N0} of {meta.Size:N0} bytes");
            _o.Progress?.Invoke(new(file, have, meta.Size, DownloadStage.Started));
            if (have == meta.Size) return 0;
            using var resp = await SendAsync(HttpMethod.Get, url, repoId, commit, file, have, ct);
            if (resp.StatusCode != HttpStatusCode.PartialContent) have = 0; // the server ignored Range: start over
            await using var body = await resp.Content.ReadAsStreamAsync(ct);
            // Unbuffered, so a full disk fails on the write that hits it, not later in Dispose.
            await using var fs = new FileStream(part, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var buf = new byte[1 << 16];
            while (have <= meta.Size)
            {
                idle.CancelAfter(_o.Timeout);
                int n;
                try { n = await body.ReadAsync(buf, idle.Token); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested) { throw TimedOut(url); }
                catch (IOException e) { throw new TransientException($"connection lost after {have:N0} of {meta.Size:N0} bytes ({e.Message})", e); }
                if (n == 0) break;
                try { await fs.WriteAsync(buf.AsMemory(0, n), ct); }
                catch (IOException e) when ((e.HResult & 0xFFFF) is 28 or 39 or 112) // ENOSPC, ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL
                {
                    throw new XmtfException($"disk full while downloading {what} into {Cache.Root}: free some space, or point HF_HUB_CACHE at a larger disk, then run again to resume", e);
                }
                have += n;
                _o.Progress?.Invoke(new(file, have, meta.Size, DownloadStage.Receiving));
            }
            if (have < meta.Size) throw new TransientException($"the server closed the connection after {have:N0} of {meta.Size:N0} bytes");
            return 0;
        }, ct, progress: () => File.Exists(part) ? new FileInfo(part).Length : 0);
        await VerifyAsync(part, what, meta, ct);
        File.Move(part, blob, overwrite: true);
        _o.Progress?.Invoke(new(file, meta.Size, meta.Size, DownloadStage.Finished));
    }

    /// <summary>Discards the download unless it has the announced size and, for an LFS file, the sha256 its etag names.</summary>
    static async Task VerifyAsync(string part, string what, FileMeta meta, CancellationToken ct)
    {
        string? problem = null;
        if (new FileInfo(part).Length != meta.Size) problem = $"size mismatch: expected {meta.Size:N0} bytes, got {new FileInfo(part).Length:N0}";
        else if (meta.IsLfs && Sha256Hex().IsMatch(meta.Etag))
        {
            await using var f = File.OpenRead(part);
            var got = Convert.ToHexStringLower(await SHA256.HashDataAsync(f, ct));
            if (got != meta.Etag) problem = $"checksum mismatch: expected sha256 {meta.Etag}, got {got}";
        }
        if (problem is null) return;
        File.Delete(part);
        throw new XmtfException($"{what}: {problem}; the download was discarded. Run the command again; if it keeps failing, a proxy or the server is corrupting the file");
    }

    async Task<FileStream> LockAsync(string path, string file, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        for (var waiting = false; ; waiting = true)
        {
            // FileShare.None takes an exclusive flock on Unix, the same lock Python's filelock takes on this file.
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (File.Exists(path))
            {
                if (!waiting) _o.Log?.Invoke($"{file}: waiting for another process downloading it ({path})");
                await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
            }
        }
    }

    /// <summary>
    /// Retries transient failures with doubling delays. <paramref name="progress"/> tells how far a download
    /// got: an attempt that got further starts the count again, so only stalls use up the retries.
    /// </summary>
    async Task<T> WithRetries<T>(string what, Func<Task<T>> attempt, CancellationToken ct, Func<long>? progress = null)
    {
        for (int failures = 0; ; )
        {
            long before = progress?.Invoke() ?? 0;
            try { return await attempt(); }
            catch (TransientException e)
            {
                failures = (progress?.Invoke() ?? 0) > before ? 1 : failures + 1;
                if (failures > _o.MaxRetries)
                    throw new XmtfException($"{what}: {e.Message}, still after {_o.MaxRetries} retries; try again later", e);
                var delay = _o.RetryDelay * Math.Pow(2, failures - 1);
                _o.Log?.Invoke($"{what}: {e.Message}; retrying in {delay.TotalSeconds:0.##} s ({failures}/{_o.MaxRetries})");
                await Task.Delay(delay, ct);
            }
        }
    }

    /// <summary>
    /// Sends one request, following redirects (for HEAD only relative ones, as Python does), and turns HTTP
    /// errors into messages people can act on. The token goes only to the Hub, never to the CDN.
    /// </summary>
    async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, string repoId, string revision, string? file, long rangeFrom, CancellationToken ct)
    {
        for (int hops = 0; ; hops++)
        {
            using var req = new HttpRequestMessage(method, url);
            if (_o.Token is { } token && url.StartsWith(_o.Endpoint + "/", StringComparison.Ordinal)) req.Headers.Authorization = new("Bearer", token);
            req.Headers.AcceptEncoding.Add(new("identity")); // sizes and hashes are of the raw bytes
            if (rangeFrom > 0) req.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_o.Timeout);
            HttpResponseMessage r;
            try { r = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, timeout.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { throw TimedOut(url); }
            catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError)
            {
                throw new HubUnreachableException($"cannot reach {new Uri(url).Authority} ({e.Message})", e);
            }
            catch (HttpRequestException e) { throw new TransientException(e.Message, e); }
            int code = (int)r.StatusCode;
            if (code is >= 300 and < 400 && r.Headers.Location is { } loc && hops < 10 && (method == HttpMethod.Get || !loc.IsAbsoluteUri))
            {
                r.Dispose();
                url = new Uri(new Uri(url), loc).ToString();
                continue;
            }
            if (code < 400) return r;
            using (r)
            {
                if (code is >= 500 or 429) throw new TransientException($"{new Uri(url).Authority} answered {code} {r.ReasonPhrase}");
                var error = r.Headers.TryGetValues("X-Error-Code", out var v) ? v.First() : null;
                throw new XmtfException(HttpError(code, error, repoId, revision, file, url));
            }
        }
    }

    TransientException TimedOut(string url) =>
        new($"no answer from {new Uri(url).Authority} within {_o.Timeout.TotalSeconds:0.##} s (set HF_HUB_DOWNLOAD_TIMEOUT to wait longer)");

    string HttpError(int code, string? error, string repoId, string revision, string? file, string url) => (code, error) switch
    {
        (_, "RevisionNotFound") => $"revision '{revision}' not found in {repoId}: check the branch, tag or commit given with @ or --revision",
        (404, "EntryNotFound") or (404, null) when file is not null => $"{file} not found in {repoId} at {revision}",
        (_, "GatedRepo") => $"{repoId} is gated: accept its conditions at {_o.Endpoint}/{repoId} while logged in, then use a token of that account " +
                            $"(create one at {_o.Endpoint}/settings/tokens, then set HF_TOKEN=hf_... or pass --token)",
        (404, _) or (_, "RepoNotFound") => $"'{repoId}' is neither a local directory nor a model on {_o.Endpoint}: check the name (org/name, e.g. bigscience/mt0-small); " +
                                           "if the repo is private, set HF_TOKEN=hf_... or pass --token",
        (401, _) when _o.Token is not null => $"{_o.Endpoint} rejected the token for {repoId} (401): check HF_TOKEN or --token (tokens are at {_o.Endpoint}/settings/tokens)",
        (401, _) => $"{repoId} is private or gated and needs a token (401): create one at {_o.Endpoint}/settings/tokens, then set HF_TOKEN=hf_... or pass --token",
        (403, _) => $"access to {repoId} was refused (403): the token has no read access to it; check its permissions at {_o.Endpoint}/settings/tokens",
        _ => $"{url} answered HTTP {code}",
    };

    public void Dispose() => _http.Dispose();
}
