using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Xmtf.Evaluation;

/// <summary>Accuracy of one template on one language.</summary>
public sealed record TemplateAccuracy(string Task, string Config, string Template, int N, double Accuracy);

/// <summary>The paper's per-language aggregates over templates: median (its figures), max (its appendix), mean.</summary>
public sealed record ConfigSummary(string Task, string Config, double Median, double Max, double Mean);

/// <summary>An evaluation's outcome, in the <c>results.json</c> schema: per-template accuracies, per-language
/// summaries and every example; groups keep the order in which they first appear in the examples.</summary>
public sealed record EvalReport(List<TemplateAccuracy> Results, List<ConfigSummary> Summary, List<ExampleResult> Examples)
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = true,
    };

    /// <summary>Aggregates examples: accuracy per (task, config, template), then median / max / mean of those per (task, config).</summary>
    public static EvalReport From(IEnumerable<ExampleResult> examples)
    {
        var list = examples.ToList();
        var results = list.GroupBy(e => (e.Task, e.Config, e.Template))
            .Select(g => new TemplateAccuracy(g.Key.Task, g.Key.Config, g.Key.Template, g.Count(), g.Count(e => e.Prediction == e.Gold) / (double)g.Count()))
            .ToList();
        var summary = results.GroupBy(r => (r.Task, r.Config)).Select(g =>
        {
            var acc = g.Select(r => r.Accuracy).ToList();
            return new ConfigSummary(g.Key.Task, g.Key.Config, Median(acc), acc.Max(), acc.Average());
        }).ToList();
        return new EvalReport(results, summary, list);
    }

    /// <summary>As <c>np.median</c>: the middle value, or the mean of the two middle values.</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary><c>{"results": [...], "summary": [...], "examples": [...]}</c>.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Per-template accuracies as CSV (task,config,template,n,accuracy).</summary>
    public string ToCsv()
    {
        static string Field(string s) => s.IndexOfAny([',', '"', '\n']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
        var sb = new StringBuilder("task,config,template,n,accuracy\n");
        foreach (var r in Results)
            sb.Append(CultureInfo.InvariantCulture, $"{Field(r.Task)},{Field(r.Config)},{Field(r.Template)},{r.N},{r.Accuracy:R}\n");
        return sb.ToString();
    }

    /// <summary>A text table like the paper's: each template's accuracy, then median and max per language.</summary>
    public string ToTable()
    {
        int width = Math.Max(8, Results.Select(r => r.Template.Length).DefaultIfEmpty().Max());
        var sb = new StringBuilder();
        foreach (var s in Summary)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"{s.Task} {s.Config}");
            foreach (var r in Results.Where(r => r.Task == s.Task && r.Config == s.Config))
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {r.Template.PadRight(width)}  {r.Accuracy * 100,6:F2}  (n={r.N})");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {"median".PadRight(width)}  {s.Median * 100,6:F2}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {"max".PadRight(width)}  {s.Max * 100,6:F2}");
        }
        return sb.ToString();
    }
}
