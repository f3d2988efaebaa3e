using System.Text.Json;
using Xmtf.Evaluation;

namespace Xmtf.Tests.Evaluation;

/// <summary>Task table, manifest defaults, template selection and aggregation.</summary>
public class EvalDataTests
{
    static readonly DataDir Data = new(Fixtures.Data());

    [Theory]
    [InlineData("xcopa", "id", "best_option|C1 or C2? premise, so/because…|i_am_hesitating|cause_effect|plausible_alternatives")]
    [InlineData("copa", "en", "best_option|C1 or C2? premise, so/because…|i_am_hesitating|cause_effect|plausible_alternatives")]
    [InlineData("xwinograd", "jp", "underscore refer to|Replace|stand for|does underscore refer to|True or False")]
    public void DefaultsAreThePapersFiveEnglishPrompts(string task, string lang, string names)
    {
        var t = EvalTask.Get(task);
        var defaults = Data.DefaultTemplateNames(t, lang, t.Splits[0]);
        Assert.Equal(names.Split('|'), defaults);
        Assert.Equal(5, DataDir.Select(Data.Templates(t, lang), string.Join(",", defaults)).Count);
    }

    [Fact]
    public void SelectHandlesCommasInNamesAndTranslatedPrompts()
    {
        var all = Data.Templates(EvalTask.Get("xcopa"), "zh");
        var chosen = DataDir.Select(all, "C1 or C2? premise, so/because…,best_option_zhht, cause_effect");
        Assert.Equal(["C1 or C2? premise, so/because…", "best_option_zhht", "cause_effect"], chosen.Select(t => t.Name));
        Assert.Throws<XmtfException>(() => DataDir.Select(all, "best_option,C1 or C2? premise"));
    }

    [Fact]
    public void SplitsMapToTheDataLayout()
    {
        Assert.Equal("xcopa/data/vi/val.vi.jsonl", EvalTask.Get("xcopa").DataFileFor("vi", "validation"));
        Assert.Equal(500, Data.Rows(EvalTask.Get("copa"), "en", "test").Count);
        Assert.Equal(83, Data.Rows(EvalTask.Get("xwinograd"), "fr", "test").Count);
        Assert.Throws<XmtfException>(() => EvalTask.Get("xwinograd").DataFileFor("fr", "validation"));
        Assert.Throws<XmtfException>(() => EvalTask.Get("nope"));
    }

    [Fact]
    public void UserAddedDatasetsFollowTheLayout()
    {
        var root = Directory.CreateTempSubdirectory("xmtf-data-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "winogrande", "data", "en"));
            File.WriteAllText(Path.Combine(root, "winogrande", "data", "en", "val.en.jsonl"),
                "{\"sentence\": \"The cup fell off the table because _ was slippery.\", \"option1\": \"The cup\", \"option2\": \"the table\", \"answer\": \"2\"}\n");
            var data = new DataDir(root, Fixtures.Data("promptsource_templates", "templates"));
            var task = EvalTask.Get("winogrande");
            var template = DataDir.Select(data.Templates(task, "en"), "True or False").Single();
            var item = Assert.Single(RankClassification.Render(task.Name, "en", template, data.Rows(task, "en", "validation"), 0, 1));
            Assert.Equal(["True", "False"], item.Choices);
            Assert.Equal(1, item.Gold);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void AggregatesPerTemplateThenPerLanguage()
    {
        ExampleResult E(string config, string template, int index, bool correct) => new("t", config, template, index, [0, 1], 1, correct ? 1 : 0);
        var report = EvalReport.From([
            E("a", "x", 0, true), E("a", "x", 1, false), E("a", "y", 0, true), E("a", "y", 1, true),
            E("a", "z", 0, false), E("a", "z", 1, false), E("a", "w", 0, false), E("a", "w", 1, true), E("b", "x", 0, true)]);
        Assert.Equal([0.5, 1, 0, 0.5, 1], report.Results.Select(r => r.Accuracy));
        Assert.Equal(new ConfigSummary("t", "a", 0.5, 1, 0.5), report.Summary[0]);
        Assert.Equal(new ConfigSummary("t", "b", 1, 1, 1), report.Summary[1]);
        Assert.Equal(2.5, EvalReport.Median([4, 1, 3, 2]));
        Assert.Equal(0, RankClassification.Argmax([-1.5, -1.5, -2]));
        var json = JsonDocument.Parse(report.ToJson()).RootElement;
        Assert.Equal(0.5, json.GetProperty("summary")[0].GetProperty("median").GetDouble());
    }
}
