using System.Text.Json;
using Xmtf.Evaluation;
using Xmtf.Generation;
using Xmtf.Tokenization;

namespace Xmtf.Tests.Evaluation;

/// <summary>
/// The whole evaluation (data, default templates, rendering, request ids, scoring, aggregation) against
/// <c>fixtures/eval/eval_golden_*.json</c>. Without arguments the tokenizer and scorer are fakes replaying the golden
/// ids and log-probs, which checks everything but the engine; with a real tokenizer (and scorer) the same check
/// covers them:
/// <code>[Fact] public void Mt5Tokenizer() => GoldenEval.Check("eval_golden_mt5.json", tokenizer: myTokenizer);</code>
/// </summary>
public class GoldenEvalTests
{
    [Fact]
    public void Mt5() => GoldenEval.Check("eval_golden_mt5.json");

    [Fact]
    public void Bloom() => GoldenEval.Check("eval_golden_bloom.json");

    [Fact]
    public void Mt5Engine()
    {
        using var p = Pipeline.Load(Fixtures.Path("tiny-mt5"));
        GoldenEval.Check("eval_golden_mt5.json", p.Tokenizer, p.Scorer);
    }

    [Fact]
    public void BloomEngine()
    {
        using var p = Pipeline.Load(Fixtures.Path("tiny-bloom"));
        GoldenEval.Check("eval_golden_bloom.json", p.Tokenizer, p.Scorer);
    }
}

public static class GoldenEval
{
    const int Rows = 10;

    public static void Check(string goldenFile, ITokenizer? tokenizer = null, IChoiceScorer? scorer = null)
    {
        var golden = Fixtures.Json("eval", goldenFile);
        var family = golden.GetProperty("model_dir").GetString()!.Contains("mt5") ? ModelFamily.EncoderDecoder : ModelFamily.DecoderOnly;
        var cases = golden.GetProperty("templates").EnumerateArray()
            .SelectMany(t => t.GetProperty("rows").EnumerateArray().Select(r => (Template: t, Row: r))).ToList();
        var truncation = golden.TryGetProperty("truncation_case", out var tc) ? tc : (JsonElement?)null;
        tokenizer ??= new GoldenTokenizer(cases.Select(c => c.Row).Concat(truncation is { } t ? [t] : []), family,
            truncation is { } t2 ? t2.GetProperty("untruncated_token_count").GetInt32() : 0);
        scorer ??= new GoldenScorer(cases.Select(c => c.Row).Concat(truncation is { } t3 ? [t3] : []), family);

        var data = new DataDir(Fixtures.Data());
        var items = new List<EvalItem>();
        foreach (var lang in golden.GetProperty("selection").GetProperty("languages").EnumerateArray())
        {
            var task = EvalTask.All.First(t => t.Dataset == lang.GetProperty("dataset_name").GetString());
            var config = lang.GetProperty("dataset_config_name").GetString()!;
            var split = task.Splits[0];
            var rows = data.Rows(task, config, split);
            var templates = DataDir.Select(data.Templates(task, config), string.Join(",", data.DefaultTemplateNames(task, config, split)));
            items.AddRange(templates.SelectMany(t => RankClassification.Render(task.Name, config, t, rows, 0, Rows)));
        }
        var results = RankClassification.Score(items, tokenizer, scorer, batchSize: 8).ToList();

        Assert.Equal(cases.Count, results.Count);
        var expected = cases.ToDictionary(c => (c.Template.GetProperty("dataset_config_name").GetString(), c.Template.GetProperty("template_name").GetString(), c.Row.GetProperty("row").GetInt32()), c => c.Row);
        foreach (var r in results)
        {
            var row = expected[(r.Config, r.Template, r.Index)];
            AssertSums(row, r.Logprobs);
            Assert.Equal(row.GetProperty("pred_index").GetInt32(), r.Prediction);
            Assert.Equal(row.GetProperty("gold_index").GetInt32(), r.Gold);
        }

        var report = EvalReport.From(results);
        foreach (var p in golden.GetProperty("per_template").EnumerateArray())
        {
            var acc = report.Results.Single(a => a.Config == p.GetProperty("dataset_config_name").GetString() && a.Template == p.GetProperty("template_name").GetString());
            Assert.Equal(p.GetProperty("n").GetInt32(), acc.N);
            Assert.Equal(p.GetProperty("accuracy").GetDouble(), acc.Accuracy, 1e-12);
        }
        foreach (var p in golden.GetProperty("per_dataset_language").EnumerateArray())
        {
            var s = report.Summary.Single(a => a.Config == p.GetProperty("dataset_config_name").GetString() && EvalTask.Get(a.Task).Dataset == p.GetProperty("dataset_name").GetString());
            Assert.Equal(p.GetProperty("median_accuracy").GetDouble(), s.Median, 1e-12);
            Assert.Equal(p.GetProperty("max_accuracy").GetDouble(), s.Max, 1e-12);
            Assert.Equal(p.GetProperty("mean_accuracy").GetDouble(), s.Mean, 1e-6);
        }

        if (truncation is { } tr)
        {
            var input = tr.GetProperty("input").GetString()!;
            var choices = Strings(tr.GetProperty("answer_choices"));
            var request = RankClassification.BuildRequest(tokenizer, family, input, choices);
            Assert.Equal(Ints(tr.GetProperty("input_ids")), request.PromptIds);
            var sums = RankClassification.Score([new EvalItem("t", "c", "n", 0, input, choices, 0)], tokenizer, scorer, 1).Single();
            AssertSums(tr, sums.Logprobs);
            Assert.Equal(tr.GetProperty("pred_index").GetInt32(), sums.Prediction);
        }
    }

    /// <summary>The README's tolerance: |Δ| ≤ 1e-5·|x| + 1e-4.</summary>
    static void AssertSums(JsonElement row, double[] actual)
    {
        var want = row.GetProperty("choice_logprob_sums").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.Equal(want.Length, actual.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - actual[i]) <= 1e-5 * Math.Abs(want[i]) + 1e-4, $"choice {i}: {actual[i]} vs golden {want[i]}");
    }

    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();
    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    /// <summary>Answers exactly the Encode calls the paper's rule makes with the golden ids; any other call fails.
    /// The truncation case's prompt gets extra ids past 512 so that truncating is needed to match.</summary>
    sealed class GoldenTokenizer : ITokenizer
    {
        readonly Dictionary<(string, bool), int[]> _ids = new();

        public GoldenTokenizer(IEnumerable<JsonElement> rows, ModelFamily family, int untruncatedLength)
        {
            foreach (var row in rows)
            {
                var input = Ints(row.GetProperty("input_ids"));
                _ids[(row.GetProperty("input").GetString()!, false)] = input.Length == RankClassification.EncoderDecoderMaxInput
                    ? [.. input, .. Enumerable.Repeat(2, untruncatedLength - input.Length)] : input;
                var choices = Strings(row.GetProperty("answer_choices"));
                var ids = row.GetProperty("choice_ids").EnumerateArray().Select(Ints).ToArray();
                for (int i = 0; i < choices.Length; i++)
                    _ids[family == ModelFamily.EncoderDecoder ? (choices[i], true) : (" " + choices[i], false)] = ids[i];
            }
        }

        public int[] Encode(string text, bool addSpecialTokens = true) =>
            _ids.TryGetValue((text, addSpecialTokens), out var ids) ? ids : throw new InvalidOperationException($"unexpected Encode({JsonSerializer.Serialize(text)}, {addSpecialTokens})");

        public int VocabSize => 0;
        public int? EosTokenId => 1;
        public int? PadTokenId => 0;
        public int? BosTokenId => null;
        public int? UnkTokenId => 2;
        public string IdToToken(int id) => throw new NotSupportedException();
        public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null) => throw new NotSupportedException();
    }

    /// <summary>Returns the golden per-token log-probs for exactly the golden (prompt, choice) ids.</summary>
    sealed class GoldenScorer(IEnumerable<JsonElement> rows, ModelFamily family) : IChoiceScorer
    {
        readonly Dictionary<string, float[]> _logprobs = rows.SelectMany(row => row.GetProperty("choice_ids").EnumerateArray().Zip(
                row.GetProperty("choice_token_logprobs").EnumerateArray(),
                (ids, lp) => (Key: Key(Ints(row.GetProperty("input_ids")), Ints(ids)), Value: lp.EnumerateArray().Select(x => x.GetSingle()).ToArray())))
            .DistinctBy(p => p.Key).ToDictionary(p => p.Key, p => p.Value);

        public ModelFamily Family => family;

        public float[][][] ScoreTokens(IReadOnlyList<ScoreRequest> requests) =>
            requests.Select(r => r.ChoiceIds.Select(c => _logprobs.TryGetValue(Key(r.PromptIds, c), out var lp) ? lp
                : throw new InvalidOperationException("request ids are not the golden ids")).ToArray()).ToArray();

        static string Key(int[] prompt, int[] choice) => string.Join(",", prompt) + "|" + string.Join(",", choice);
    }
}
