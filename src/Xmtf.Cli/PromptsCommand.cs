using System.Text;
using Xmtf.Evaluation;

namespace Xmtf.Cli;

/// <summary><c>xmtf prompts</c>: a dataset rendered with its promptsource templates as xP3-format JSONL.</summary>
public static class PromptsCommand
{
    public const string Help = "render a dataset with its prompts into xP3-format JSONL (inputs/targets)";

    const string Usage = """
        usage: xmtf prompts --task <task> [--lang zh] [--split test] [--templates "a,b"] [--out file.jsonl]
                            [--data-dir DIR] [--templates-dir DIR]

        Applies every English template of the task (or the named ones) to every row, as xP3 is built: templates in
        name order, empty renderings dropped, records sorted by inputs. --templates-dir replaces the data directory's
        promptsource_templates/templates (xP3 itself used promptsource branch tr13). Writes to stdout without --out.
        """;

    /// <summary>Runs <c>xmtf prompts</c>.</summary>
    public static int Run(string[] argv)
    {
        var a = Args.Parse("prompts", argv, ["task", "lang", "split", "templates", "out", "data-dir", "templates-dir"], ["help"]);
        if (a.Flag("help")) { Console.WriteLine(Usage); return 0; }
        var task = EvalTask.Get(a.Require("task", "prompts"));
        var data = EvalCommand.OpenDataDir(a, a.Get("templates-dir"));
        var lang = a.Get("lang") ?? (task.Languages is [var only] ? only : throw new XmtfException($"task '{task.Name}' needs --lang"));
        var split = a.Get("split") ?? task.Splits[0];
        var templates = a.Get("templates") is { } names ? DataDir.Select(data.Templates(task, lang), names) : data.EnglishTemplates(task);
        var records = Xp3Prompts.Render(templates, data.Rows(task, lang, split), lang, split, task.Dataset, task.ConfigFor(lang, split));

        using var writer = a.Get("out") is { } path ? new StreamWriter(path, false, new UTF8Encoding(false)) : new StreamWriter(Console.OpenStandardOutput());
        int count = 0;
        foreach (var r in records) { writer.WriteLine(Xp3Prompts.ToJson(r)); count++; }
        Console.Error.WriteLine($"{count} records");
        return 0;
    }
}
