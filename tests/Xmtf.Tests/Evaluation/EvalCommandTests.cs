using System.Text.Json;
using Xmtf.Cli;
using Xmtf.Evaluation;
using Xmtf.Generation;
using Xmtf.Tokenization;

namespace Xmtf.Tests.Evaluation;

/// <summary><c>xmtf eval</c> end to end with a deterministic fake model: outputs, resuming, user errors.</summary>
public sealed class EvalCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("xmtf-eval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string[] Argv(params string[] extra) =>
        ["--model", "fake", "--task", "xcopa", "--lang", "id,vi", "--range", "0:6", "--data-dir", Fixtures.Data(),
         "--output", Path.Combine(_dir, "results.json"), "--batch-size", "4", .. extra];

    [Fact]
    public void WritesResultsCsvAndPlot()
    {
        var scorer = new FakeScorer();
        Assert.Equal(0, EvalCommand.Run(Argv("--plot", Path.Combine(_dir, "plot.svg")), _ => (new FakeTokenizer(), scorer, "fake")));

        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json"))).RootElement;
        Assert.Equal(["results", "summary", "examples"], json.EnumerateObject().Select(p => p.Name));
        var results = json.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(10, results.Count); // 2 languages x the 5 paper templates
        Assert.Equal(["task", "config", "template", "n", "accuracy"], results[0].EnumerateObject().Select(p => p.Name));
        Assert.All(results, r => Assert.Equal(6, r.GetProperty("n").GetInt32()));
        Assert.Equal(["task", "config", "median", "max", "mean"], json.GetProperty("summary")[0].EnumerateObject().Select(p => p.Name));
        var examples = json.GetProperty("examples").EnumerateArray().ToList();
        Assert.Equal(60, examples.Count);
        Assert.Equal(["task", "config", "template", "index", "logprobs", "prediction", "gold"], examples[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(60, scorer.Scored);

        Assert.Equal(11, File.ReadAllLines(Path.Combine(_dir, "results.csv")).Length);
        Assert.Contains("\"C1 or C2? premise, so/because…\"", File.ReadAllText(Path.Combine(_dir, "results.csv")));
        Assert.StartsWith("<svg", File.ReadAllText(Path.Combine(_dir, "plot.svg")));
        Assert.False(File.Exists(ResultJournal.PathFor(Path.Combine(_dir, "results.json"))));
    }

    [Fact]
    public void InterruptedRunResumesWithoutRescoring()
    {
        var output = Path.Combine(_dir, "results.json");
        Assert.Equal(0, EvalCommand.Run(Argv(), _ => (new FakeTokenizer(), new FakeScorer(), "fake")));
        var complete = File.ReadAllText(output);
        File.Delete(output);

        // The run dies in its fourth batch: three batches (12 examples) are in the journal.
        Assert.Throws<InvalidOperationException>(() => EvalCommand.Run(Argv(), _ => (new FakeTokenizer(), new FakeScorer(failAfter: 12), "fake")));
        Assert.Equal(12, File.ReadAllLines(ResultJournal.PathFor(output)).Length);

        var rest = new FakeScorer();
        Assert.Equal(0, EvalCommand.Run(Argv(), _ => (new FakeTokenizer(), rest, "fake")));
        Assert.Equal(48, rest.Scored);
        Assert.Equal(complete, File.ReadAllText(output));

        // Another model's journal entries are not reused.
        Assert.Throws<InvalidOperationException>(() => EvalCommand.Run(Argv(), _ => (new FakeTokenizer(), new FakeScorer(failAfter: 12), "fake")));
        var other = new FakeScorer();
        Assert.Equal(0, EvalCommand.Run(Argv(), _ => (new FakeTokenizer(), other, "other")));
        Assert.Equal(60, other.Scored);
    }

    [Theory]
    [InlineData("--templates", "best_option,no such prompt")]
    [InlineData("--range", "5-9")]
    [InlineData("--split", "train")]
    [InlineData("--lang", "xx")]
    [InlineData("--batch-size", "0")]
    public void UserErrorsStopBeforeTheModelLoads(string option, string value) =>
        Assert.Throws<XmtfException>(() => EvalCommand.Run(Argv(option, value), _ => throw new InvalidOperationException("model loaded")));

    [Fact]
    public void RealCliOnTinyMt5()
    {
        var output = Path.Combine(_dir, "real.json");
        var (code, stdout, err) = Cli.XmtfProcess.Run("eval", "--model", Fixtures.Path("tiny-mt5"), "--task", "xcopa", "--lang", "et",
            "--split", "validation", "--range", "0:4", "--data-dir", Fixtures.Data(), "--output", output);
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(File.ReadAllText(output));
        Assert.Equal(5, doc.RootElement.GetProperty("results").GetArrayLength());
        Assert.Equal(20, doc.RootElement.GetProperty("examples").GetArrayLength());
        Assert.Contains("median", stdout);
    }

    /// <summary>One id per character (+ eos 1 with special tokens).</summary>
    sealed class FakeTokenizer : ITokenizer
    {
        public int[] Encode(string text, bool addSpecialTokens = true) =>
            [.. text.EnumerateRunes().Select(r => 3 + r.Value % 997), .. addSpecialTokens ? [1] : Array.Empty<int>()];
        public int VocabSize => 1000;
        public int? EosTokenId => 1;
        public int? PadTokenId => 0;
        public int? BosTokenId => null;
        public int? UnkTokenId => 2;
        public string IdToToken(int id) => throw new NotSupportedException();
        public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null) => throw new NotSupportedException();
    }

    /// <summary>A token's log-prob depends on the token and the prompt length; throws once <paramref name="failAfter"/> examples are done.</summary>
    sealed class FakeScorer(int failAfter = int.MaxValue) : IChoiceScorer
    {
        public int Scored { get; private set; }
        public ModelFamily Family => ModelFamily.EncoderDecoder;

        public float[][][] ScoreTokens(IReadOnlyList<ScoreRequest> requests)
        {
            if (Scored + requests.Count > failAfter) throw new InvalidOperationException("interrupted");
            Scored += requests.Count;
            return requests.Select(r => r.ChoiceIds.Select(c => c.Select(t => -((t * 31 + r.PromptIds.Length) % 17) / 8f).ToArray()).ToArray()).ToArray();
        }
    }
}
