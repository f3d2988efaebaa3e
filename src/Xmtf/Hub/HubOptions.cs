namespace Xmtf.Hub;

/// <summary>Where a file download stands, reported to <see cref="HubOptions.Progress"/>.</summary>
public enum DownloadStage { Started, Receiving, Finished }

/// <summary>
/// Progress of one file: <paramref name="Received"/> counts bytes already on disk, so a resumed download
/// starts above zero.
/// </summary>
public readonly record struct DownloadProgress(string File, long Received, long Total, DownloadStage Stage);

/// <summary>
/// How to reach the Hub and where its cache lives. <see cref="FromEnvironment()"/> reads the same variables
/// as Python's huggingface_hub, so both share one cache and one token. Leaving <see cref="Progress"/> and
/// <see cref="Log"/> null makes the client silent.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Access token for gated or private repos (<c>HF_TOKEN</c>, else the token file of <c>hf auth login</c>).</summary>
    public string? Token { get; init; }
    /// <summary>Use the cache only, never the network (<c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; init; }
    /// <summary>The Hub's base URL (<c>HF_ENDPOINT</c>).</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;
    /// <summary>Branch, tag or commit; overrides none given in the model id. Null means the id's, else <c>main</c>.</summary>
    public string? Revision { get; init; }
    /// <summary>The huggingface_hub cache directory (<c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>).</summary>
    public string CacheDir { get; init; } = DefaultCacheDir(Environment.GetEnvironmentVariable);
    /// <summary>How long to wait for a response or for the next bytes of one (<c>HF_HUB_DOWNLOAD_TIMEOUT</c>).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Retries after a transient error (5xx, 429, connection reset, timeout).</summary>
    public int MaxRetries { get; init; } = 5;
    /// <summary>The first wait before a retry; it doubles on each further one.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Called on the downloading thread as bytes arrive.</summary>
    public Action<DownloadProgress>? Progress { get; init; }
    /// <summary>One-line notes for the user: the resolved commit, retries, resumes, waiting for a lock.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Options from <c>HF_TOKEN</c>, <c>HF_HUB_OFFLINE</c>, <c>HF_ENDPOINT</c>, <c>HF_HUB_CACHE</c>, <c>HF_HOME</c> and <c>HF_HUB_DOWNLOAD_TIMEOUT</c>.</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>As <see cref="FromEnvironment()"/>, reading variables through <paramref name="env"/>.</summary>
    public static HubOptions FromEnvironment(Func<string, string?> env)
    {
        string? Var(string name) => env(name) is { Length: > 0 } v ? v : null;
        var timeout = Var("HF_HUB_DOWNLOAD_TIMEOUT") is { } t && double.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(30);
        return new HubOptions
        {
            Token = Var("HF_TOKEN") ?? Var("HUGGING_FACE_HUB_TOKEN") ?? ReadTokenFile(Var("HF_TOKEN_PATH") ?? Path.Combine(HfHome(env), "token")),
            Offline = Var("HF_HUB_OFFLINE")?.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE",
            Endpoint = (Var("HF_ENDPOINT") ?? DefaultEndpoint).TrimEnd('/'),
            CacheDir = DefaultCacheDir(env),
            Timeout = timeout,
        };
    }

    static string? ReadTokenFile(string path) => File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } t ? t : null;

    static string HfHome(Func<string, string?> env) =>
        env("HF_HOME") is { Length: > 0 } home ? home
        : Path.Combine(env("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    static string DefaultCacheDir(Func<string, string?> env) =>
        env("HF_HUB_CACHE") is { Length: > 0 } c ? c
        : env("HUGGINGFACE_HUB_CACHE") is { Length: > 0 } legacy ? legacy
        : Path.Combine(HfHome(env), "hub");
}
