using System.Text.Json.Nodes;

namespace Xmtf.Hub;

/// <summary>Which of a repo's files a model needs: config, tokenizer and one complete set of weights.</summary>
public static class ModelFiles
{
    /// <summary>Small files taken when the repo has them (<c>config.json</c> is required).</summary>
    public static readonly string[] Metadata =
        ["config.json", "generation_config.json", "tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>
    /// The weight files among <paramref name="files"/>: safetensors preferred over <c>.bin</c> (as transformers
    /// does), an index with all its shards. <paramref name="readIndex"/> returns the text of an index file,
    /// which may mean downloading it. Null when no complete set is there.
    /// </summary>
    public static async Task<IReadOnlyList<string>?> WeightsAsync(IReadOnlySet<string> files, Func<string, Task<string>> readIndex)
    {
        foreach (var (index, single) in new[] { ("model.safetensors.index.json", "model.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model.bin") })
        {
            if (files.Contains(index))
            {
                JsonObject? map;
                try { map = (JsonNode.Parse(await readIndex(index)) as JsonObject)?["weight_map"] as JsonObject; }
                catch (System.Text.Json.JsonException) { map = null; } // an unusable index is no complete set
                var shards = map?.Select(kv => kv.Value?.GetValue<string>() ?? "").Distinct().ToList();
                if (shards is { Count: > 0 } && shards.All(files.Contains)) return [index, .. shards];
            }
            else if (files.Contains(single)) return [single];
        }
        return null;
    }
}
