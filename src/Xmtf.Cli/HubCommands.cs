using Xmtf.Hub;

namespace Xmtf.Cli;

/// <summary><c>xmtf download</c>, <c>xmtf list</c> and <c>xmtf rm</c>: the Hub cache shared with Python's huggingface_hub.</summary>
public static class HubCommands
{
    public static int Download(string[] argv)
    {
        var a = Args.Parse("download", argv, HubCli.ValueOptions, [.. HubCli.FlagOptions, "help"]);
        if (Usage(a, "download", "<org/name[@revision]> [options]\n\nDownloads what the model needs into the Hub cache and prints its directory.\n\n" + HubCli.Help, 1)) return 0;
        var (repoId, revision) = ModelLocator.ParseId(a.Positional[0], a.Get("revision"));
        var dir = HubCli.WithProgress(a, options =>
        {
            using var client = new HubClient(options);
            return client.DownloadModelAsync(repoId, revision).GetAwaiter().GetResult();
        });
        Console.WriteLine(dir);
        return 0;
    }

    public static int List(string[] argv)
    {
        var a = Args.Parse("list", argv, [], ["help"]);
        if (Usage(a, "list", "\n\nLists the models in the Hub cache ($HF_HUB_CACHE) with their size on disk and revisions.\n", 0)) return 0;
        var cache = new HubCache(HubOptions.FromEnvironment().CacheDir);
        var repos = cache.List();
        Console.WriteLine($"cache: {cache.Root}");
        if (repos.Count == 0) { Console.WriteLine("no models"); return 0; }
        int width = Math.Max(4, repos.Max(r => r.RepoId.Length));
        Console.WriteLine($"{"REPO".PadRight(width)}  {"SIZE",9}  REVISIONS");
        foreach (var r in repos)
        {
            // Commits no branch or tag points at any more are shown by their hash.
            var revisions = r.Refs.Select(kv => $"{kv.Key}={kv.Value[..Math.Min(8, kv.Value.Length)]}")
                .Concat(r.Commits.Where(c => !r.Refs.Values.Contains(c)).Select(c => c[..Math.Min(8, c.Length)]));
            Console.WriteLine($"{r.RepoId.PadRight(width)}  {HubCli.Size(r.SizeBytes),9}  {string.Join(", ", revisions)}");
        }
        return 0;
    }

    public static int Remove(string[] argv)
    {
        var a = Args.Parse("rm", argv, [], ["help"]);
        if (Usage(a, "rm", "<org/name>\n\nDeletes the model, all its revisions, from the Hub cache.\n", 1)) return 0;
        var cache = new HubCache(HubOptions.FromEnvironment().CacheDir);
        var repoId = ModelLocator.ParseId(a.Positional[0]).RepoId;
        var removed = cache.Remove(repoId) ?? throw new XmtfException($"{repoId} is not in the cache ({cache.Root}); 'xmtf list' shows what is");
        Console.WriteLine($"removed {repoId} ({HubCli.Size(removed.SizeBytes)}) from {cache.Root}");
        return 0;
    }

    /// <summary>Prints usage for --help (true), or throws unless there are exactly <paramref name="positionals"/> arguments.</summary>
    static bool Usage(Args a, string command, string usage, int positionals)
    {
        if (a.Flag("help")) { Console.WriteLine($"usage: xmtf {command} {usage}"); return true; }
        if (a.Positional.Count != positionals)
            throw new XmtfException($"expected {(positionals == 0 ? "no arguments" : "a model id, e.g. bigscience/mt0-small")} (see 'xmtf {command} --help')");
        return false;
    }
}
