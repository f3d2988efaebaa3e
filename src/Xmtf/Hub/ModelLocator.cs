using System.Text.RegularExpressions;

namespace Xmtf.Hub;

/// <summary>Turns what a user passes as <c>--model</c> into a local model directory.</summary>
public static partial class ModelLocator
{
    // huggingface_hub's rule: [org/]name of letters, digits, '-', '_', '.', without '--' or '..'.
    [GeneratedRegex(@"^(?!.*(--|\.\.))[\w.-]{1,96}(/[\w.-]{1,96})?$")]
    private static partial Regex RepoId();

    /// <summary>
    /// An existing directory is returned as is; anything else is a Hub id <c>org/name[@revision]</c>, whose
    /// snapshot in the cache is returned after downloading what is missing (see <see cref="HubClient.DownloadModelAsync"/>).
    /// </summary>
    /// <example><c>var dir = ModelLocator.Resolve("bigscience/mt0-small", HubOptions.FromEnvironment());</c></example>
    public static string Resolve(string modelArg, HubOptions options) => ResolveAsync(modelArg, options).GetAwaiter().GetResult();

    /// <inheritdoc cref="Resolve"/>
    public static async Task<string> ResolveAsync(string modelArg, HubOptions options, CancellationToken ct = default)
    {
        if (Directory.Exists(modelArg)) return modelArg;
        var (repoId, revision) = ParseId(modelArg, options.Revision);
        using var client = new HubClient(options);
        return await client.DownloadModelAsync(repoId, revision, ct);
    }

    /// <summary>
    /// Splits <c>org/name[@revision]</c>; <paramref name="revision"/> (from <c>--revision</c>) is used when the
    /// id has none, and the revision defaults to <c>main</c>.
    /// </summary>
    public static (string RepoId, string Revision) ParseId(string modelArg, string? revision = null)
    {
        var at = modelArg.LastIndexOf('@');
        var (id, idRevision) = at < 0 ? (modelArg, null) : (modelArg[..at], modelArg[(at + 1)..]);
        if (!RepoId().IsMatch(id) || idRevision is "")
            throw new XmtfException($"'{modelArg}' is neither a local directory nor a Hub model id (org/name[@revision], e.g. bigscience/mt0-small)");
        if (idRevision is not null && revision is not null && idRevision != revision)
            throw new XmtfException($"'{modelArg}' names revision '{idRevision}' but --revision says '{revision}': give one");
        return (id, idRevision ?? revision ?? "main");
    }
}
