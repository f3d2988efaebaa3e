using System.Text.RegularExpressions;

namespace Xmtf.Hub;

/// <summary>A model repo in the cache: its revisions (ref name → commit), bytes on disk and folder.</summary>
public sealed record CachedRepo(string RepoId, IReadOnlyDictionary<string, string> Refs, IReadOnlyList<string> Commits, long SizeBytes, string Folder);

/// <summary>
/// The cache layout of Python's huggingface_hub, so both share one cache:
/// <c>models--org--name/blobs/&lt;etag&gt;</c> holds each file once, <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> are
/// relative symlinks to those blobs, <c>refs/&lt;revision&gt;</c> holds the commit a branch or tag pointed at,
/// and <c>.locks/models--org--name/&lt;etag&gt;.lock</c> serialises writers of a blob.
/// </summary>
public sealed partial class HubCache(string root)
{
    public string Root { get; } = root;

    [GeneratedRegex("^[0-9a-f]{40}$")]
    internal static partial Regex CommitHash();

    /// <summary>The repo's folder, e.g. <c>models--bigscience--mt0-small</c>.</summary>
    public string RepoFolder(string repoId) => Path.Combine(Root, "models--" + repoId.Replace("/", "--"));
    public string BlobPath(string repoId, string etag) => Path.Combine(RepoFolder(repoId), "blobs", etag);
    public string SnapshotDir(string repoId, string commit) => Path.Combine(RepoFolder(repoId), "snapshots", commit);
    public string LockPath(string repoId, string etag) => Path.Combine(Root, ".locks", Path.GetFileName(RepoFolder(repoId)), etag + ".lock");
    string RefPath(string repoId, string revision) => Path.Combine(RepoFolder(repoId), "refs", revision);

    /// <summary>The commit a revision resolves to from the cache alone: a commit hash is itself, a branch or tag is read from refs.</summary>
    public string? CachedCommit(string repoId, string revision) =>
        CommitHash().IsMatch(revision) ? revision
        : File.Exists(RefPath(repoId, revision)) ? File.ReadAllText(RefPath(repoId, revision)).Trim() : null;

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/>, as Python does (not for a commit hash itself).</summary>
    public void WriteRef(string repoId, string revision, string commit)
    {
        if (revision == commit) return;
        var path = RefPath(repoId, revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path) || File.ReadAllText(path).Trim() != commit) File.WriteAllText(path, commit);
    }

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> point at the blob with a relative symlink; where symlinks
    /// are not allowed (Windows without developer mode) the blob is copied instead.
    /// </summary>
    public void LinkSnapshot(string repoId, string commit, string file, string blob)
    {
        var pointer = Path.Combine(SnapshotDir(repoId, commit), file);
        if (File.Exists(pointer)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        File.Delete(pointer); // a dangling link left by a blob someone removed
        try { File.CreateSymbolicLink(pointer, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob)); }
        catch (Exception e) when (OperatingSystem.IsWindows() && e is IOException or UnauthorizedAccessException) { File.Copy(blob, pointer); }
    }

    /// <summary>The model repos in the cache, by name.</summary>
    public IReadOnlyList<CachedRepo> List()
    {
        if (!Directory.Exists(Root)) return [];
        return Directory.GetDirectories(Root, "models--*").Order(StringComparer.Ordinal).Select(folder =>
        {
            var repoId = Path.GetFileName(folder)["models--".Length..].Replace("--", "/");
            var refsDir = Path.Combine(folder, "refs");
            var refs = Directory.Exists(refsDir)
                ? Directory.GetFiles(refsDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                    .ToDictionary(f => Path.GetRelativePath(refsDir, f).Replace('\\', '/'), f => File.ReadAllText(f).Trim())
                : new Dictionary<string, string>();
            var snapshots = Path.Combine(folder, "snapshots");
            var commits = Directory.Exists(snapshots) ? Directory.GetDirectories(snapshots).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList() : [];
            var blobs = Path.Combine(folder, "blobs");
            long size = Directory.Exists(blobs) ? new DirectoryInfo(blobs).GetFiles().Sum(f => f.Length) : 0;
            return new CachedRepo(repoId, refs, commits!, size, folder);
        }).ToList();
    }

    /// <summary>Deletes a repo with all its revisions; returns what was removed, or null if it was not cached.</summary>
    public CachedRepo? Remove(string repoId)
    {
        var repo = List().FirstOrDefault(r => r.RepoId == repoId);
        if (repo is null) return null;
        Directory.Delete(repo.Folder, recursive: true);
        var locks = Path.GetDirectoryName(LockPath(repoId, "x"))!;
        if (Directory.Exists(locks)) Directory.Delete(locks, recursive: true);
        return repo;
    }
}
