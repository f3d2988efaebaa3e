using System.Text.Json;

namespace Xmtf.Tokenization;

/// <summary>Loads the tokenizer of a model directory as transformers' <c>AutoTokenizer</c> would.</summary>
public static class Tokenizers
{
    /// <summary>
    /// <c>tokenizer.json</c> when present (the fast tokenizer, which AutoTokenizer prefers), else
    /// <c>spiece.model</c> through the slow <see cref="T5Tokenizer"/>; <paramref name="forceSentencePiece"/>
    /// always takes <c>spiece.model</c>. <c>clean_up_tokenization_spaces</c> comes from
    /// <c>tokenizer_config.json</c> (default true).
    /// </summary>
    public static ITokenizer Load(string modelDir, bool forceSentencePiece = false)
    {
        var jsonPath = Path.Combine(modelDir, "tokenizer.json");
        var spmPath = Path.Combine(modelDir, "spiece.model");
        bool cleanUp = ReadCleanUp(Path.Combine(modelDir, "tokenizer_config.json"));
        if (forceSentencePiece || !File.Exists(jsonPath))
        {
            if (File.Exists(spmPath)) return T5Tokenizer.FromFile(spmPath, cleanUp);
            throw new XmtfException(forceSentencePiece
                ? $"{modelDir}: no spiece.model"
                : $"{modelDir}: no tokenizer (neither tokenizer.json nor spiece.model)");
        }

        using var doc = ParseJson(jsonPath);
        var type = doc.RootElement.TryGetProperty("model", out var model) && model.TryGetProperty("type", out var t) ? t.GetString() : null;
        return type switch
        {
            "Unigram" => T5TokenizerFast.FromJson(doc.RootElement, cleanUp, jsonPath),
            "BPE" => ByteLevelBpeTokenizer.FromFile(jsonPath),
            _ => throw new XmtfException($"{jsonPath}: tokenizer model type '{type}' is not supported"),
        };
    }

    static bool ReadCleanUp(string configPath)
    {
        if (!File.Exists(configPath)) return true;
        using var doc = ParseJson(configPath);
        return !doc.RootElement.TryGetProperty("clean_up_tokenization_spaces", out var v) || v.ValueKind != JsonValueKind.False;
    }

    internal static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new XmtfException($"{path}: cannot read: {e.Message}", e);
        }
    }
}
