using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xmtf.Tensors;

namespace Xmtf.Cli;

/// <summary>Options every model-taking command shares, and the JSON-lines plumbing of the batch form.</summary>
static class ModelArgs
{
    public static readonly string[] Values = ["model", "dtype", "threads", .. HubCli.ValueOptions];
    public static readonly string[] Flags = ["use-bin", "use-spiece", .. HubCli.FlagOptions];

    public static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static WeightType ParseDType(string? s) => s switch
    {
        null or "f32" or "fp32" or "float32" => WeightType.F32,
        "bf16" or "bfloat16" => WeightType.BF16,
        "int8" or "i8" or "q8" => WeightType.I8,
        _ => throw new XmtfException($"--dtype must be f32, bf16 or int8, got '{s}'"),
    };

    public static Pipeline Load(Args a, string command)
    {
        if (a.GetInt("threads") is { } t)
        {
            if (t < 1) throw new XmtfException("--threads must be >= 1");
            Kernels.Threads = t;
        }
        var dir = HubCli.ResolveModel(a, a.Require("model", command));
        return Pipeline.Load(dir, new LoadOptions
        {
            DType = ParseDType(a.Get("dtype")),
            PreferBin = a.Flag("use-bin"),
            ForceSentencePiece = a.Flag("use-spiece"),
        });
    }

    /// <summary>The single positional text, or null for "-" (JSON lines on stdin).</summary>
    public static string? SingleText(Args a, string command)
    {
        if (a.Positional.Count != 1) throw new XmtfException($"'xmtf {command}' takes exactly one text argument (or '-' to read JSON lines from stdin)");
        return a.Positional[0] == "-" ? null : a.Positional[0];
    }

    /// <summary>All JSON-lines objects of stdin, validated before any work starts (blank lines skipped).</summary>
    public static List<JsonObject> ReadLines(TextReader input)
    {
        var list = new List<JsonObject>();
        int n = 0;
        for (string? line; (line = input.ReadLine()) is not null;)
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                list.Add(JsonNode.Parse(line) as JsonObject ?? throw new XmtfException($"stdin line {n}: expected a JSON object"));
            }
            catch (JsonException e) { throw new XmtfException($"stdin line {n}: invalid JSON ({e.Message})"); }
        }
        return list;
    }

    /// <summary>Input ids of a batch line: {"text": ...} encoded, or {"ids": [...]} used exactly as given.</summary>
    public static int[] LineIds(JsonObject o, int line, Func<string, int[]> encode, string textKey = "text", string idsKey = "ids")
    {
        if (o[idsKey] is JsonArray ids) return Ints(ids, $"line {line}: '{idsKey}'");
        if (o[textKey] is JsonValue v && v.TryGetValue<string>(out var text)) return encode(text);
        throw new XmtfException($"stdin line {line}: needs \"{textKey}\" (a string) or \"{idsKey}\" (an array of token ids)");
    }

    public static int[] Ints(JsonArray a, string what)
    {
        try { return a.Select(x => x!.GetValue<int>()).ToArray(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        { throw new XmtfException($"{what} must be an array of integers"); }
    }

    public static void WriteJson(object value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));
}
