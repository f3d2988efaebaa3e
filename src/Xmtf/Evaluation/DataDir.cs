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

    /// <summary>The task's English-prompt templates (its first promptsource subset), in file order.</summary>
    public List<PromptTemplate> EnglishTemplates(EvalTask task)
    {
        var file = Path.Combine(TemplatesRoot, task.TemplateSubsets[0], "templates.yaml");
        return File.Exists(file) ? PromptTemplate.Load(file) : throw new XmtfException($"no templates file '{file}'");
    }

    /// <summary>All templates for a language: the English ones, then the translated ones of the language's subset if it exists.</summary>
    public List<PromptTemplate> Templates(EvalTask task, string lang) =>
        [.. EnglishTemplates(task), .. task.TemplateSubsets.Skip(1)
            .Select(s => Path.Combine(TemplatesRoot, s.Replace("{lang}", lang), "templates.yaml"))
            .Where(File.Exists).SelectMany(PromptTemplate.Load)];

    /// <summary>The templates named in a comma-separated list, in its order. Names may themselves hold commas
    /// ("C1 or C2? premise, so/because…"), so the longest run of pieces that names a template wins.</summary>
    public static List<PromptTemplate> Select(IReadOnlyList<PromptTemplate> all, string names)
    {
        var pieces = names.Split(',');
        var chosen = new List<PromptTemplate>();
        for (int i = 0; i < pieces.Length;)
        {
            var match = Enumerable.Range(i + 1, pieces.Length - i).Reverse()
                .Select(j => (End: j, Template: all.FirstOrDefault(t => t.Name == string.Join(",", pieces[i..j]).Trim())))
                .FirstOrDefault(m => m.Template is not null);
            if (match.Template is null)
                throw new XmtfException($"no template '{pieces[i].Trim()}' (there are: {string.Join(" | ", all.Select(t => t.Name))})");
            chosen.Add(match.Template);
            i = match.End;
        }
        return chosen;
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
