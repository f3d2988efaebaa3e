using System.Text.Json;

namespace Xmtf.Evaluation;

/// <summary>
/// Where a task's rows and templates live under a data directory laid out as the project's shared data:
/// rows in <see cref="DataFile"/> (JSONL, one example per line, the Hugging Face columns), templates in
/// <c>promptsource_templates/templates/&lt;subset&gt;/templates.yaml</c>, default prompts from
/// <c>xmtf_eval_config/eval_manifest.csv</c>.
/// </summary>
/// <param name="Name">What <c>--task</c> takes.</param>
/// <param name="Dataset">Hugging Face / promptsource dataset name (manifest <c>dataset_name</c>).</param>
/// <param name="Config">Manifest <c>dataset_config_name</c>; <c>{lang}</c> / <c>{split}</c> are substituted.</param>
/// <param name="DataFile">Path of the rows relative to the data directory; <c>{lang}</c> and <c>{split}</c>
/// (the split's file name: <c>val</c> for validation) are substituted.</param>
/// <param name="Languages">Languages the task has; null: any for which a data file exists.</param>
/// <param name="Splits">Splits the task has, the one the paper evaluates on first (the default).</param>
/// <param name="TemplateSubsets">promptsource subsets searched for template names, English prompts first
/// (<c>{lang}</c> substituted: that is where the translated <c>*_&lt;lang&gt;mt</c> / <c>ht</c> prompts are).</param>
public sealed record EvalTask(string Name, string Dataset, string Config, string DataFile, string[]? Languages, string[] Splits, string[] TemplateSubsets)
{
    /// <summary>The tasks <c>xmtf eval</c> knows. The first three ship with the data; the others are read from
    /// JSONL files the user adds at <see cref="DataFile"/> (their licenses forbid redistribution).</summary>
    public static readonly IReadOnlyList<EvalTask> All =
    [
        new("xcopa", "xcopa", "{lang}", "xcopa/data/{lang}/{split}.{lang}.jsonl", ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"], ["validation", "test"], ["xcopa/en", "xcopa/{lang}"]),
        new("copa", "super_glue", "copa", "copa_en/{split}.en.jsonl", ["en"], ["validation", "test", "train"], ["super_glue/copa"]),
        new("xwinograd", "Muennighoff/xwinograd", "{lang}", "xwinograd/derived_jsonl/{lang}.jsonl", ["en", "fr", "jp", "pt", "ru", "zh"], ["test"], ["Muennighoff/xwinograd/en", "Muennighoff/xwinograd/{lang}"]),
        new("xnli", "xnli", "{lang}", "xnli/data/{lang}/{split}.{lang}.jsonl", null, ["validation", "test"], ["xnli/en", "xnli/{lang}"]),
        new("xstorycloze", "Muennighoff/xstory_cloze", "{lang}", "xstory_cloze/data/{lang}/{split}.{lang}.jsonl", null, ["validation", "train"], ["Muennighoff/xstory_cloze/en", "Muennighoff/xstory_cloze/{lang}"]),
        new("anli", "anli", "{split}", "anli/data/en/{split}.en.jsonl", ["en"], ["dev_r1", "dev_r2", "dev_r3"], ["anli"]),
        new("winogrande", "winogrande", "winogrande_xl", "winogrande/data/en/{split}.en.jsonl", ["en"], ["validation"], ["winogrande/winogrande_xl"]),
        new("storycloze", "story_cloze", "2016", "story_cloze/data/en/{split}.en.jsonl", ["en"], ["validation"], ["story_cloze/2016"]),
        new("rte", "super_glue", "rte", "rte/data/en/{split}.en.jsonl", ["en"], ["validation"], ["super_glue/rte"]),
        new("cb", "super_glue", "cb", "cb/data/en/{split}.en.jsonl", ["en"], ["validation"], ["super_glue/cb"]),
    ];

    /// <summary>The task called <paramref name="name"/>; unknown names throw <see cref="XmtfException"/>.</summary>
    public static EvalTask Get(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new XmtfException($"unknown task '{name}' (known: {string.Join(", ", All.Select(t => t.Name))})");

    /// <summary>The manifest's <c>dataset_config_name</c> for a language and split.</summary>
    public string ConfigFor(string lang, string split) => Config.Replace("{lang}", lang).Replace("{split}", split);

    /// <summary>The data file for a language and split, relative to the data directory.</summary>
    public string DataFileFor(string lang, string split)
    {
        if (Languages is not null && !Languages.Contains(lang))
            throw new XmtfException($"task '{Name}' has no language '{lang}' (it has: {string.Join(", ", Languages)})");
        if (!Splits.Contains(split))
            throw new XmtfException($"task '{Name}' has no split '{split}' (it has: {string.Join(", ", Splits)})");
        return DataFile.Replace("{lang}", lang).Replace("{split}", split == "validation" ? "val" : split);
    }

    /// <summary>The rows of a JSONL file as example dictionaries (string, long, double, bool, null, lists, dictionaries).</summary>
    public static List<Dictionary<string, object?>> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new XmtfException($"no data file '{path}'");
        var rows = new List<Dictionary<string, object?>>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (ToValue(doc.RootElement) is not Dictionary<string, object?> row) throw new XmtfException($"{path}:{line}: not a JSON object");
                rows.Add(row);
            }
            catch (JsonException e) { throw new XmtfException($"{path}:{line}: {e.Message}", e); }
        }
        return rows;
    }

    static object? ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : (object)e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(ToValue).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToValue(p.Value)),
        _ => null,
    };
}
