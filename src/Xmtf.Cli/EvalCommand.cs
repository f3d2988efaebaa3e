using System.Diagnostics;
using Xmtf.Evaluation;
using Xmtf.Generation;
using Xmtf.Tokenization;

namespace Xmtf.Cli;

/// <summary><c>xmtf eval</c>: the paper's zero-shot rank classification on a task's languages and prompts.</summary>
public static class EvalCommand
{
    public const string Help = "zero-shot accuracy with promptsource prompts, as the paper evaluates (rank classification)";

    const string Usage = """
        usage: xmtf eval --model <m> --task <task> [--lang id,vi] [--split validation|test] [--templates "a,b"]
                         [--range 10:20] [--output results.json] [--plot results.svg] [--data-dir DIR] [--batch-size 8]

        Scores every answer choice by its summed token log-probability and picks the best; reports accuracy per
        template and the median / max over templates per language. Defaults: all the task's languages, the split
        the paper uses, its 5 English prompts (xmtf_eval_config/eval_manifest.csv), all rows.
        Writes the JSON results, a CSV next to them, and <output>.partial.jsonl while running: rerunning an
        interrupted command resumes from it.
        Tasks: xcopa, copa, xwinograd (in the data directory); xnli, xstorycloze, anli, winogrande, storycloze, rte,
        cb from JSONL files you add (layout: see the README). --data-dir defaults to $XMTF_DATA.
        """;

    /// <summary>Runs <c>xmtf eval</c> with the real model loader.</summary>
    public static int Run(string[] argv) => Run(argv, LoadModel);

    /// <summary>Runs the command with the given model loader (tests pass fakes).</summary>
    public static int Run(string[] argv, Func<Args, (ITokenizer Tokenizer, IChoiceScorer Scorer, string ModelName)> loadModel)
    {
        var a = Args.Parse("eval", argv, [.. ModelArgs.Values, "task", "lang", "split", "templates", "range", "output", "plot", "data-dir", "batch-size"], [.. ModelArgs.Flags, "help"]);
        if (a.Flag("help")) { Console.WriteLine(Usage); return 0; }
        a.Require("model", "eval");
        var task = EvalTask.Get(a.Require("task", "eval"));
        var data = OpenDataDir(a);
        var split = a.Get("split") ?? task.Splits[0];
        var langs = a.Get("lang")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            ?? task.Languages ?? throw new XmtfException($"task '{task.Name}' needs --lang");
        int batchSize = a.GetInt("batch-size") ?? 8;
        if (batchSize < 1) throw new XmtfException("--batch-size must be at least 1");
        var output = a.Get("output") ?? "results.json";

        // Everything the data can get wrong is checked before the (slow) model load.
        var items = new List<EvalItem>();
        foreach (var lang in langs)
        {
            var rows = data.Rows(task, lang, split);
            var (start, end) = ParseRange(a.Get("range"), rows.Count);
            var names = a.Get("templates") ?? string.Join(",", data.DefaultTemplateNames(task, lang, split));
            foreach (var template in DataDir.Select(data.Templates(task, lang), names))
                items.AddRange(RankClassification.Render(task.Name, lang, template, rows, start, end));
        }

        var (tokenizer, scorer, model) = loadModel(a);
        using var journal = new ResultJournal(ResultJournal.PathFor(output), model);
        var todo = items.Where(x => !journal.Done.ContainsKey((x.Task, x.Config, x.Template, x.Index))).ToList();
        if (todo.Count < items.Count) Console.Error.WriteLine($"resuming: {items.Count - todo.Count} of {items.Count} examples already scored ({journal.Path})");
        var progress = new Progress(todo.Count);
        var fresh = new Dictionary<(string, string, string, int), ExampleResult>();
        foreach (var r in RankClassification.Score(todo, tokenizer, scorer, batchSize))
        {
            journal.Add(r);
            fresh[(r.Task, r.Config, r.Template, r.Index)] = r;
            progress.Step();
        }
        progress.Finish();

        var report = EvalReport.From(items.Select(x => (x.Task, x.Config, x.Template, x.Index)).Select(k => journal.Done.TryGetValue(k, out var r) ? r : fresh[k]));
        Console.Write(report.ToTable());
        File.WriteAllText(output, report.ToJson());
        File.WriteAllText(Path.ChangeExtension(output, ".csv"), report.ToCsv());
        if (a.Get("plot") is { } plot) File.WriteAllText(plot, AccuracyPlot.Svg(report));
        journal.Complete();
        Console.Error.WriteLine($"wrote {output} and {Path.ChangeExtension(output, ".csv")}{(a.Get("plot") is { } p ? " and " + p : "")}");
        return 0;
    }

    /// <summary>The model under evaluation, with the tokenizer and scorer of its family.</summary>
    public static (ITokenizer Tokenizer, IChoiceScorer Scorer, string ModelName) LoadModel(Args a)
    {
        // Lives until the process exits, like the evaluation itself.
        var p = ModelArgs.Load(a, "eval");
        return (p.Tokenizer, p.Scorer, a.Require("model", "eval"));
    }

    /// <summary>--data-dir, else $XMTF_DATA.</summary>
    public static DataDir OpenDataDir(Args a, string? templatesRoot = null)
    {
        var dir = a.Get("data-dir") ?? Environment.GetEnvironmentVariable("XMTF_DATA");
        if (string.IsNullOrEmpty(dir)) throw new XmtfException("no data directory: pass --data-dir or set XMTF_DATA");
        if (!Directory.Exists(dir)) throw new XmtfException($"data directory '{dir}' does not exist");
        return new DataDir(dir, templatesRoot);
    }

    /// <summary>"a:b", "a:" or ":b" (row numbers, end excluded, clamped to the split); null means all rows.</summary>
    static (int Start, int End) ParseRange(string? range, int rows)
    {
        if (range is null) return (0, rows);
        var parts = range.Split(':');
        int Bound(string s, int dflt) => s.Length == 0 ? dflt
            : int.TryParse(s, out var v) && v >= 0 ? Math.Min(v, rows) : throw new XmtfException($"--range expects start:end row numbers, got '{range}'");
        if (parts.Length != 2) throw new XmtfException($"--range expects start:end row numbers, got '{range}'");
        int start = Bound(parts[0], 0), end = Bound(parts[1], rows);
        return (start, Math.Max(start, end));
    }

    /// <summary>A one-line progress bar on stderr with examples/s and the time left.</summary>
    sealed class Progress(int total)
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        int _done;
        double _shownAt = double.NegativeInfinity;

        public void Step()
        {
            _done++;
            double now = _clock.Elapsed.TotalSeconds;
            if (_done < total && now - _shownAt < 0.5) return;
            _shownAt = now;
            double rate = _done / Math.Max(now, 1e-9);
            var eta = TimeSpan.FromSeconds(Math.Round((total - _done) / rate));
            int filled = (int)(30.0 * _done / total);
            Console.Error.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {_done}/{total}  {rate:F1} examples/s  ETA {eta:hh\\:mm\\:ss} ");
        }

        public void Finish() { if (total > 0) Console.Error.WriteLine(); }
    }
}
