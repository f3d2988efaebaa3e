using System.Text.Json;
using Xmtf.Evaluation;

namespace Xmtf.Tests.Evaluation;

/// <summary>Every line of the promptsource-rendered fixtures, reproduced exactly (whitespace included).</summary>
public class TemplateRenderingTests
{
    readonly Dictionary<string, List<PromptTemplate>> _templates = new();
    readonly Dictionary<string, List<Dictionary<string, object?>>> _rows = new();

    [Fact]
    public void RankEvalFixtures() => CheckEveryLine("rank_eval_fixtures.jsonl", 3540);

    [Fact]
    public void TemplateCoverageFixtures() => CheckEveryLine("template_coverage_fixtures.jsonl", 798);

    void CheckEveryLine(string file, int expectedLines)
    {
        var failures = new List<string>();
        int lines = 0;
        foreach (var text in File.ReadLines(Fixtures.Data("rendered_fixtures", file)))
        {
            lines++;
            var f = JsonDocument.Parse(text).RootElement;
            var error = Check(f);
            if (error is not null) failures.Add($"line {lines} ({f.GetProperty("template_name")}, row {f.GetProperty("row")}): {error}");
        }
        Assert.Equal(expectedLines, lines);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(10)));
    }

    string? Check(JsonElement f)
    {
        string S(string name) => f.GetProperty(name).GetString()!;
        var subset = S("template_config_name") == "None" ? $"{S("dataset_name")}/{S("dataset_config_name")}" : $"{S("dataset_name")}/{S("template_config_name")}";
        var templates = Cached(_templates, subset, () => PromptTemplate.Load(Fixtures.Data("promptsource_templates", "templates", subset, "templates.yaml")));
        var template = templates.Single(t => t.Id == S("template_id"));
        Assert.Equal(S("template_name"), template.Name);
        var example = Cached(_rows, S("data_file"), () => EvalTask.ReadJsonl(Fixtures.Data(S("data_file"))))[f.GetProperty("row").GetInt32()];

        var parts = template.Apply(example);
        if (f.TryGetProperty("rendered_empty", out var empty) && empty.GetBoolean())
            return parts is [""] ? null : $"expected an empty rendering, got {JsonSerializer.Serialize(parts)}";
        string[] targets = f.TryGetProperty("targets", out var ts) ? ts.EnumerateArray().Select(t => t.GetString()!).ToArray() : [S("target")];
        string[] expected = [S("input"), .. targets];
        if (!parts.SequenceEqual(expected)) return $"rendered {JsonSerializer.Serialize(parts)}, expected {JsonSerializer.Serialize(expected)}";
        var choices = f.GetProperty("answer_choices").EnumerateArray().Select(c => c.GetString()!).ToArray();
        var actualChoices = template.AnswerChoicesList(example)!;
        if (!actualChoices.SequenceEqual(choices)) return $"choices {JsonSerializer.Serialize(actualChoices)}, expected {JsonSerializer.Serialize(choices)}";
        return Array.IndexOf(choices, targets[0]) == f.GetProperty("gold_index").GetInt32() ? null : "gold index differs";
    }

    static T Cached<T>(Dictionary<string, T> cache, string key, Func<T> load) =>
        cache.TryGetValue(key, out var v) ? v : cache[key] = load();
}
