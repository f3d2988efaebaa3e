using System.Text.Encodings.Web;
using System.Text.Json;

namespace Xmtf.Evaluation;

/// <summary>One xP3 record (xP3x field layout; xP3 proper keeps only <see cref="Inputs"/> and <see cref="Targets"/>).</summary>
public sealed record Xp3Record(string Inputs, string Targets, string Language, string Split, string Template, string Dataset, string Config);

/// <summary>
/// Renders a dataset with its templates as xP3 does (bigscience's <c>prepare_xp3_train.py</c>, xP3all): per template
/// in sorted-name order, every row applied, empty or multi-target results dropped, records sorted by inputs.
/// </summary>
public static class Xp3Prompts
{
    /// <summary>xP3 keeps at most this many records per template.</summary>
    const int MaxPerTemplate = 100_000;

    static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The records for <paramref name="rows"/> of one dataset split.</summary>
    public static IEnumerable<Xp3Record> Render(IEnumerable<PromptTemplate> templates, IReadOnlyList<Dictionary<string, object?>> rows,
        string language, string split, string dataset, string config) =>
        templates.OrderBy(t => t.Name, CodePointComparer.Instance).SelectMany(t => rows
            .Select(t.Apply)
            .Where(p => p is [{ Length: > 0 }, { Length: > 0 }])
            .Select(p => new Xp3Record(p[0], p[1], language, split, t.Name, dataset, config))
            .OrderBy(r => r.Inputs, CodePointComparer.Instance) // stable: rows with equal inputs keep data order
            .Take(MaxPerTemplate));

    /// <summary>One JSON line of a record, laid out as Python's <c>json.dumps(ensure_ascii=False)</c> writes the
    /// xP3 files (", " and ": " separators, UTF-8 text unescaped), so that files compare byte for byte.</summary>
    public static string ToJson(Xp3Record r)
    {
        string Q(string s) => JsonSerializer.Serialize(s, Json);
        return $"{{\"inputs\": {Q(r.Inputs)}, \"targets\": {Q(r.Targets)}, \"language\": {Q(r.Language)}, \"split\": {Q(r.Split)}, " +
            $"\"template\": {Q(r.Template)}, \"dataset\": {Q(r.Dataset)}, \"config\": {Q(r.Config)}}}";
    }
}
