using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xmtf.Tests.Cli;

/// <summary>The CLI contract: generate/tokenize/score, --json, and the JSON-lines batch form.</summary>
public class CliTests
{
    static readonly string Mt5 = Fixtures.Path("tiny-mt5"), Bloom = Fixtures.Path("tiny-bloom");

    static JsonObject Obj(string line) => (JsonObject)JsonNode.Parse(line)!;
    static int[] Ids(JsonNode? n) => n!.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    [Theory]
    [InlineData("generate"), InlineData("tokenize"), InlineData("score"), InlineData("download"), InlineData("list"), InlineData("rm")]
    [InlineData("eval"), InlineData("prompts"), InlineData("init"), InlineData("bench"), InlineData("serve"), InlineData("run")]
    public void EveryCommandHasHelp(string command)
    {
        var (code, outp, err) = XmtfProcess.Run(command, "--help");
        Assert.True(code == 0, err);
        Assert.StartsWith($"usage: xmtf {command}", outp);
    }

    [Fact]
    public void GenerateJsonMatchesTransformersGreedy()
    {
        var g = Fixtures.Json("tiny-mt5", "golden.json");
        var greedy = g.GetProperty("greedy")[0];
        var prompt = g.GetProperty("prompts").EnumerateArray().First(p => p.GetProperty("id").GetString() == greedy.GetProperty("prompt").GetString());
        var (code, outp, err) = XmtfProcess.Run("generate", "--model", Mt5, "--max-new-tokens", "20", "--json", prompt.GetProperty("text").GetString()!);
        Assert.True(code == 0, err);
        var o = Obj(outp);
        Assert.Equal(greedy.GetProperty("sequence").Ints()[1..], Ids(o["ids"]));
        Assert.Equal(greedy.GetProperty("text").GetString(), o["text"]!.GetValue<string>());
    }

    [Fact]
    public void BatchFormRunsEveryLineAndMatchesSingleRuns()
    {
        var g = Fixtures.Json("tiny-bloom", "golden.json");
        var greedy = g.GetProperty("greedy").EnumerateArray().ToArray();
        var seqs = g.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray();
        var stdin = string.Join('\n', greedy.Select(e => JsonSerializer.Serialize(new { ids = seqs[e.GetProperty("seq").GetInt32()] })));
        var (code, outp, err) = XmtfProcess.RunWithInput(stdin, "generate", "--model", Bloom, "--max-new-tokens", "20", "--batch-size", "3", "-");
        Assert.True(code == 0, err);
        var lines = outp.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(greedy.Length, lines.Length);
        for (int i = 0; i < greedy.Length; i++)
            Assert.Equal(greedy[i].GetProperty("new_tokens").Ints(), Ids(Obj(lines[i])["ids"]));
    }

    [Fact]
    public void TokenizeJsonAndBatch()
    {
        var (code, outp, _) = XmtfProcess.Run("tokenize", "--model", Mt5, "--json", "Translate to English: Je t’aime.");
        Assert.Equal(0, code);
        var g = Fixtures.Json("tiny-mt5", "golden.json").GetProperty("prompts")[0];
        Assert.Equal(g.GetProperty("input_ids").Ints(), Ids(Obj(outp)["ids"]));
        (code, outp, _) = XmtfProcess.RunWithInput("{\"text\":\"Hello\"}\n{\"ids\":[43,370]}\n", "tokenize", "--model", Bloom, "-");
        Assert.Equal(0, code);
        var lines = outp.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(["H", "el"], Obj(lines[1])["tokens"]!.AsArray().Select(x => x!.GetValue<string>()));
    }

    [Fact]
    public void ScoreMatchesChoiceLogLikelihood()
    {
        var c = Fixtures.Json("tiny-mt5", "golden.json").GetProperty("choice_loglik")[0];
        var choices = c.GetProperty("choices").EnumerateArray().ToArray();
        var args = new List<string> { "score", "--model", Mt5, "--prompt", c.GetProperty("context").GetString()!, "--json" };
        foreach (var ch in choices) { args.Add("--choice"); args.Add(ch.GetProperty("text").GetString()!); }
        var (code, outp, err) = XmtfProcess.Run([.. args]);
        Assert.True(code == 0, err);
        var o = Obj(outp);
        for (int i = 0; i < choices.Length; i++)
            Assert.Equal(choices[i].GetProperty("sum_logprob").GetDouble(), o["choices"]![i]!["logprob"]!.GetValue<double>(), 1e-3);
        Assert.Equal(c.GetProperty("argmax_sum_logprob").GetInt32(), o["best"]!.GetValue<int>());

        var b = Fixtures.Json("tiny-bloom", "golden.json").GetProperty("choice_loglik")[0];
        var line = JsonSerializer.Serialize(new { prompt_ids = b.GetProperty("context_ids").Ints(), choices_ids = b.GetProperty("choices").EnumerateArray().Select(x => x.GetProperty("ids").Ints()) });
        (code, outp, err) = XmtfProcess.RunWithInput(line + "\n", "score", "--model", Bloom, "-");
        Assert.True(code == 0, err);
        var bo = Obj(outp.Trim());
        var bchoices = b.GetProperty("choices").EnumerateArray().ToArray();
        for (int i = 0; i < bchoices.Length; i++)
            Assert.Equal(bchoices[i].GetProperty("sum_logprob").GetDouble(), bo["choices"]![i]!["logprob"]!.GetValue<double>(), 1e-3);
        Assert.Equal(b.GetProperty("argmax_sum_logprob").GetInt32(), bo["best"]!.GetValue<int>());
    }

    [Fact]
    public void BeamAndSamplingOptions()
    {
        var (code, outp, err) = XmtfProcess.Run("generate", "--model", Mt5, "--num-beams", "4", "--num-return-sequences", "2", "--max-new-tokens", "8", "--json", "Hello");
        Assert.True(code == 0, err);
        Assert.Equal(2, Obj(outp)["sequences"]!.AsArray().Count);
        string[] sample = ["generate", "--model", Bloom, "--do-sample", "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--seed", "7", "--max-new-tokens", "8", "--json", "Hi"];
        var first = XmtfProcess.Run(sample);
        Assert.Equal(0, first.Code);
        Assert.Equal(first.Out, XmtfProcess.Run(sample).Out); // same seed, same tokens
        Assert.Equal(8, Ids(Obj(first.Out)["ids"]).Length);
    }
}
