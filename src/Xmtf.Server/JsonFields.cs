using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xmtf.Server;

/// <summary>
/// Typed reads of a request object's fields. A field of the wrong type is a 400 naming it; so is a field that
/// was never read (<see cref="CheckAllRead"/>), so a misspelt option is never silently ignored. JSON null
/// reads as absent, as the OpenAI and TGI clients send null for options they leave unset.
/// </summary>
sealed class JsonFields(JsonObject obj, string where = "")
{
    readonly HashSet<string> _read = new();

    /// <summary>The request body as a JSON object, or 400.</summary>
    public static async Task<JsonFields> ReadBody(HttpRequest request)
    {
        JsonNode? node;
        try
        {
            node = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted);
            // Duplicate keys only surface when the object is first enumerated.
            if (node is JsonObject o) _ = o.Count;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new ApiException(400, $"malformed JSON body: {e.Message}");
        }
        return node is JsonObject obj ? new JsonFields(obj) : throw new ApiException(400, "the body must be a JSON object");
    }

    string Name(string name) => where.Length == 0 ? name : $"{where}.{name}";
    ApiException Wrong(string name, string what) => new(400, $"'{Name(name)}' must be {what}");

    JsonNode? Node(string name)
    {
        _read.Add(name);
        return obj[name];
    }

    /// <summary>The field as it is, for fields of several shapes.</summary>
    public JsonNode? Raw(string name) => Node(name);

    public string? String(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw Wrong(name, "a string"),
    };

    public bool? Bool(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw Wrong(name, "true or false"),
    };

    public double? Number(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => throw Wrong(name, "a number"),
    };

    public int? Int(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) => i,
        _ => throw Wrong(name, "an integer"),
    };

    public ulong? ULong(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<ulong>(out var i) => i,
        _ => throw Wrong(name, "a non-negative integer"),
    };

    public JsonObject? Object(string name) => Node(name) switch
    {
        null => null,
        JsonObject o => o,
        _ => throw Wrong(name, "an object"),
    };

    public JsonArray? Array(string name) => Node(name) switch
    {
        null => null,
        JsonArray a => a,
        _ => throw Wrong(name, "an array"),
    };

    /// <summary>A string or an array of strings (prompt lists, stop sequences).</summary>
    public IReadOnlyList<string>? Strings(string name) => Node(name) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        JsonArray a when a.All(x => x is JsonValue e && e.GetValueKind() == JsonValueKind.String) => a.Select(x => x!.GetValue<string>()).ToArray(),
        _ => throw Wrong(name, "a string or an array of strings"),
    };

    /// <summary>
    /// A field of the API this server does not implement: accepted when null or <paramref name="neutral"/> (the
    /// value that turns it off), 422 otherwise.
    /// </summary>
    public void Unsupported(string name, object? neutral = null)
    {
        var node = Node(name);
        bool off = node is null || neutral switch
        {
            bool b => node.GetValueKind() is JsonValueKind.True or JsonValueKind.False && node.GetValue<bool>() == b,
            double d => node.GetValueKind() == JsonValueKind.Number && node.GetValue<double>() == d,
            string s => node.GetValueKind() == JsonValueKind.String && node.GetValue<string>() == s,
            _ => false,
        };
        if (!off) throw new ApiException(422, $"'{Name(name)}' is not supported by this server (leave it out{(neutral is null ? "" : $" or set it to {JsonSerializer.Serialize(neutral)}")})");
    }

    /// <summary>400 for the first field no read asked for.</summary>
    public void CheckAllRead()
    {
        if (obj.Select(kv => kv.Key).FirstOrDefault(k => !_read.Contains(k)) is { } unknown)
            throw new ApiException(400, $"unknown field '{Name(unknown)}'");
    }
}
