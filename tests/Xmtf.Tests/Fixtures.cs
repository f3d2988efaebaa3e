using System.Text.Json;

namespace Xmtf.Tests;

/// <summary>Locates <c>shared/</c> (fixtures and data): $XMTF_SHARED, else the nearest ancestor's <c>shared/</c>.</summary>
public static class Fixtures
{
    public static readonly string Shared = Find();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Shared, "fixtures", .. parts]);
    public static string Data(params string[] parts) => System.IO.Path.Combine([Shared, "data", .. parts]);
    public static JsonElement Json(params string[] parts) => JsonDocument.Parse(File.ReadAllText(Path(parts))).RootElement;

    static string Find()
    {
        if (Environment.GetEnvironmentVariable("XMTF_SHARED") is { Length: > 0 } env) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var s = System.IO.Path.Combine(d.FullName, "shared");
            if (Directory.Exists(System.IO.Path.Combine(s, "fixtures"))) return s;
        }
        // The workplace layout, for a clone made elsewhere.
        if (Directory.Exists("/work/shared/fixtures")) return "/work/shared";
        throw new InvalidOperationException("shared/fixtures not found above the test directory; set XMTF_SHARED");
    }
}
