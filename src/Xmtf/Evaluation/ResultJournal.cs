using System.Text.Json;

namespace Xmtf.Evaluation;

/// <summary>
/// The examples an unfinished run has scored, one JSON line each, so that rerunning the same command resumes
/// instead of recomputing them. Entries are keyed by (task, config, template, row) and tagged with the model,
/// so a run with another model ignores them. A line cut short by a kill is skipped.
/// </summary>
public sealed class ResultJournal : IDisposable
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    readonly string _model;
    readonly StreamWriter _writer;

    /// <summary>Finished examples of earlier runs with this model.</summary>
    public IReadOnlyDictionary<(string Task, string Config, string Template, int Index), ExampleResult> Done { get; }

    public string Path { get; }

    /// <summary>The journal kept next to an output file.</summary>
    public static string PathFor(string output) => output + ".partial.jsonl";

    /// <summary>Opens (or starts) the journal at <paramref name="path"/> for runs of <paramref name="model"/>.</summary>
    public ResultJournal(string path, string model)
    {
        (Path, _model) = (path, model);
        var done = new Dictionary<(string, string, string, int), ExampleResult>();
        if (File.Exists(path))
            foreach (var line in File.ReadLines(path))
                if (Parse(line) is { } e && e.Model == model)
                    done[(e.Example.Task, e.Example.Config, e.Example.Template, e.Example.Index)] = e.Example;
        Done = done;
        _writer = new StreamWriter(path, append: true);
    }

    static Entry? Parse(string line)
    {
        try { return JsonSerializer.Deserialize<Entry>(line, Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Records one finished example (flushed at once: the process may be killed any time).</summary>
    public void Add(ExampleResult example)
    {
        _writer.WriteLine(JsonSerializer.Serialize(new Entry(_model, example), Json));
        _writer.Flush();
    }

    /// <summary>The run is complete: its results are written elsewhere, the journal goes.</summary>
    public void Complete()
    {
        _writer.Dispose();
        File.Delete(Path);
    }

    public void Dispose() => _writer.Dispose();

    sealed record Entry(string Model, ExampleResult Example);
}
