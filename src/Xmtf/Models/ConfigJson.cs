using System.Text.Json.Nodes;

namespace Xmtf.Models;

/// <summary>Typed reads of config.json values, with errors that name the key.</summary>
static class ConfigJson
{
    /// <summary>A required positive integer, under <paramref name="key"/> or its alias.</summary>
    public static int Positive(JsonObject c, string key, string? alias = null) =>
        (c[key] ?? (alias is null ? null : c[alias])) is JsonValue v && v.TryGetValue<int>(out var x) && x > 0 ? x
        : throw new XmtfException($"config.json: '{key}' must be a positive integer");

    public static int Int(JsonObject c, string key, int fallback) => c[key] is JsonValue v && v.TryGetValue<int>(out var x) ? x : fallback;

    public static float Float(JsonObject c, string key, float fallback) => c[key] is JsonValue v && v.TryGetValue<double>(out var x) ? (float)x : fallback;

    public static bool Bool(JsonObject c, string key, bool fallback) => c[key] is JsonValue v && v.TryGetValue<bool>(out var x) ? x : fallback;

    public static string String(JsonObject c, string key, string fallback) => c[key] is JsonValue v && v.TryGetValue<string>(out var x) ? x : fallback;
}
