using Xmtf.Evaluation;

namespace Xmtf.Tests.Evaluation;

/// <summary>Every line of <c>data/xp3_format_sample</c>, reproduced byte for byte and in order.</summary>
public class Xp3PromptsTests
{
    [Theory]
    [InlineData("xcopa", "id", "test", "id_xcopa_id_test.jsonl")]
    [InlineData("xcopa", "sw", "test", "sw_xcopa_sw_test.jsonl")]
    [InlineData("xcopa", "ta", "test", "ta_xcopa_ta_test.jsonl")]
    [InlineData("xcopa", "vi", "test", "vi_xcopa_vi_test.jsonl")]
    [InlineData("xcopa", "zh", "test", "zh_xcopa_zh_test.jsonl")]
    [InlineData("copa", "en", "train", "en_super_glue_copa_train.jsonl")]
    public void ReproducesSample(string taskName, string lang, string split, string file)
    {
        var data = new DataDir(Fixtures.Data(), Fixtures.Data("xp3_format_sample", "templates_tr13"));
        var task = EvalTask.Get(taskName);
        var records = Xp3Prompts.Render(data.EnglishTemplates(task), data.Rows(task, lang, split), lang, split, task.Dataset, task.ConfigFor(lang, split))
            .Select(Xp3Prompts.ToJson).ToList();
        var expected = File.ReadAllLines(Fixtures.Data("xp3_format_sample", file));
        Assert.Equal(expected.Length, records.Count);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == records[i], $"line {i + 1}:\n  expected {expected[i]}\n  actual   {records[i]}");
    }
}
