namespace Xmtf.Evaluation;

/// <summary>
/// A data directory in the layout of the project's shared data: task rows (see <see cref="EvalTask.DataFile"/>),
/// <c>promptsource_templates/templates/&lt;subset&gt;/templates.yaml</c> and <c>xmtf_eval_config/eval_manifest.csv</c>.
/// </summary>
/// <param name="root">The data directory.</param>
/// <param name="templatesRoot">Where the promptsource subsets are; null: <c>promptsource_templates/templates</c> under the root.</param>
public sealed class DataDir(string root, string? templatesRoot = null)
{
    public string Root { get; } = root;
    public string TemplatesRoot { get; } = templatesRoot ?? Path.Combine(root, "promptsource_templates", "templates");

    /// <summary>The rows of a task's split for a language, in file order (row number = index).</summary>
    public List<Dictionary<string, object?>> Rows(EvalTask task, string lang, string split) =>
        EvalTask.ReadJsonl(Path.Combine(Root, task.DataFileFor(lang, split)));

    /// <summary>All templates of the task's promptsource subsets that exist for this language, English ones first.</summary>
    public List<PromptTemplate> Templates(EvalTask task, string lang)
    {
        var files = task.TemplateSubsets.Select(s => Path.Combine(TemplatesRoot, s.Replace("{lang}", lang), "templates.yaml")).Distinct().ToList();
        if (!File.Exists(files[0])) throw new XmtfException($"no templates file '{files[0]}'");
        return files.Where(File.Exists).SelectMany(PromptTemplate.Load).ToList();
    }

    /// <summary>The named templates, in the order given; an unknown name throws <see cref="XmtfException"/>.</summary>
    public List<PromptTemplate> Templates(EvalTask task, string lang, IEnumerable<string> names)
    {
        var all = Templates(task, lang);
        return names.Select(n => all.FirstOrDefault(t => t.Name == n) ?? throw new XmtfException(
            $"task '{task.Name}' ({lang}) has no template '{n}' (it has: {string.Join(", ", all.Select(t => t.Name))})")).ToList();
    }

    /// <summary>The paper's English-prompt templates for a task and language: manifest groups L1/L2.</summary>
    public List<string> DefaultTemplateNames(EvalTask task, string lang, string split)
    {
        var path = Path.Combine(Root, "xmtf_eval_config", "eval_manifest.csv");
        if (!File.Exists(path)) throw new XmtfException($"no eval manifest '{path}'; pass --templates");
        var config = task.ConfigFor(lang, split);
        var names = File.ReadLines(path).Skip(1).Select(ParseCsvLine)
            .Where(r => r is ["L1" or "L2", var ds, var cfg, _, _, _] && ds == task.Dataset && cfg == config)
            .Select(r => r[4]).Distinct().ToList();
        return names.Count > 0 ? names
            : throw new XmtfException($"the eval manifest has no templates for {task.Dataset}/{config}; pass --templates");
    }

    /// <summary>One CSV record (double-quoted fields may hold commas and doubled quotes).</summary>
    static string[] ParseCsvLine(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted && c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
            else if (c == '"') quoted = !quoted;
            else if (c == ',' && !quoted) { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return [.. fields];
    }
}
