using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Xmtf.Evaluation;

/// <summary>
/// One promptsource template (a <c>!Template</c> entry of a <c>templates.yaml</c>), applied exactly as
/// promptsource's <c>Template.apply</c> / <c>get_answer_choices_list</c> (branch xp3mt) do.
/// </summary>
public sealed class PromptTemplate
{
    /// <summary>Stands in for "|||" inside example fields while rendering, so that data text never splits
    /// input from target (promptsource's own placeholder, for identical results).</summary>
    const string PipePlaceholder = "3ed2dface8203c4c9dfb1a5dc58e41e0||";

    readonly JinjaTemplate _template;
    readonly JinjaTemplate? _choices;

    public string Id { get; }
    public string Name { get; }

    /// <summary>Jinja source: input, "|||", target.</summary>
    public string Jinja { get; }

    /// <summary>Jinja source of the answer choices, separated by "|||"; null for generation-only templates.</summary>
    public string? AnswerChoices { get; }

    public PromptTemplate(string id, string name, string jinja, string? answerChoices)
    {
        (Id, Name, Jinja, AnswerChoices) = (id, name, jinja, answerChoices);
        // promptsource truncates every printed value to 2048 characters by rewriting the source this way.
        _template = JinjaTemplate.Parse(jinja.Replace("}}", " | string | truncate(2048) }}"));
        _choices = answerChoices is null ? null : JinjaTemplate.Parse(answerChoices);
    }

    /// <summary>The rendered answer choices, each stripped; null when the template has none.</summary>
    public string[]? AnswerChoicesList(IReadOnlyDictionary<string, object?> example) =>
        _choices?.Render(Protect(example)).Split("|||").Select(c => Unprotect(JinjaTemplate.PyStrip(c))).ToArray();

    /// <summary>The rendered parts split on "|||", each stripped: input then target(s). <c>[""]</c> when the
    /// template renders empty for this example (promptsource skips such examples).</summary>
    public string[] Apply(IReadOnlyDictionary<string, object?> example)
    {
        var vars = Protect(example);
        if (_choices is not null) vars["answer_choices"] = AnswerChoicesList(vars)!.Cast<object?>().ToList();
        return _template.Render(vars).Split("|||").Select(p => JinjaTemplate.PyStrip(Unprotect(p))).ToArray();
    }

    static Dictionary<string, object?> Protect(IReadOnlyDictionary<string, object?> example) =>
        example.ToDictionary(p => p.Key, p => p.Value is string s ? s.Replace("|||", PipePlaceholder) : p.Value);

    static string Unprotect(string s) => s.Replace(PipePlaceholder, "|||");

    /// <summary>The templates of one <c>templates.yaml</c>, in file order.</summary>
    public static List<PromptTemplate> Load(string yamlPath)
    {
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(UnderscoredNamingConvention.Instance)
            .WithTagMapping("!Template", typeof(YamlTemplate))
            .WithTagMapping("!TemplateMetadata", typeof(Dictionary<string, object>))
            .IgnoreUnmatchedProperties()
            .Build();
        YamlFile file;
        try { file = deserializer.Deserialize<YamlFile>(File.ReadAllText(yamlPath)); }
        catch (YamlDotNet.Core.YamlException e) { throw new XmtfException($"{yamlPath}: {e.Message}", e); }
        return file.Templates.Values.Select(t => new PromptTemplate(t.Id, t.Name, t.Jinja, t.AnswerChoices)).ToList();
    }

    sealed class YamlFile
    {
        public Dictionary<string, YamlTemplate> Templates { get; set; } = new();
    }

    sealed class YamlTemplate
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string Jinja { get; set; } = "";
        public string? AnswerChoices { get; set; }
    }
}
