using Xmtf.Generation;

namespace Xmtf.Tests.Generation;

/// <summary>Logits processors (as transformers defines them), streaming and stop strings.</summary>
public class GenerationTests
{
    static readonly GenerationDefaults Defaults = new() { EosTokenIds = [1], PadTokenId = 0 };

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeScores()
    {
        float[] s = [2f, -2f, 1f, 3f];
        LogitsProcessors.Apply(s, [0, 1, 1], 0, new GenerationOptions { RepetitionPenalty = 2f }, Defaults, 1);
        Assert.Equal([1f, -4f, 1f, 3f], s);
    }

    [Fact]
    public void NoRepeatNgramBansTheTokenThatWouldRepeatAnNgram()
    {
        var s = new float[10];
        LogitsProcessors.Apply(s, [5, 6, 7, 5, 6], 0, new GenerationOptions { NoRepeatNgramSize = 3 }, Defaults, 1);
        Assert.Equal(float.NegativeInfinity, s[7]);
        Assert.Equal(1, s.Count(float.IsNegativeInfinity));
    }

    [Fact]
    public void MinNewTokensMasksEosUntilReached()
    {
        var o = new GenerationOptions { MinNewTokens = 2 };
        var s = new float[4];
        LogitsProcessors.Apply(s, [0], 1, o, Defaults, 1);
        Assert.Equal(float.NegativeInfinity, s[1]);
        s = new float[4];
        LogitsProcessors.Apply(s, [0], 2, o, Defaults, 1);
        Assert.Equal(0f, s[1]);
    }

    [Fact]
    public void TopKAndTopPKeepTheBestTokens()
    {
        float[] s = [1f, 4f, 3f, 2f];
        LogitsProcessors.Apply(s, [], 0, new GenerationOptions { DoSample = true, TopK = 2 }, Defaults, 1);
        Assert.Equal([float.NegativeInfinity, 4f, 3f, float.NegativeInfinity], s);
        // softmax([0, 10, 0, 0]) puts ~0.9999 on token 1: top_p 0.5 keeps only it.
        s = [0f, 10f, 0f, 0f];
        LogitsProcessors.Apply(s, [], 0, new GenerationOptions { DoSample = true, TopK = 0, TopP = 0.5f }, Defaults, 1);
        Assert.Equal(1, s.Count(float.IsFinite));
        s = [0f, 2f, 2f];
        LogitsProcessors.Apply(s, [], 0, new GenerationOptions { DoSample = true, TopK = 0, Temperature = 0.5f }, Defaults, 1);
        Assert.Equal([0f, 4f, 4f], s);
    }

    [Fact]
    public async Task StreamingGivesTheGreedyTokensAndStopStringsEndEarly()
    {
        using var p = Pipeline.Load(Fixtures.Path("tiny-bloom"));
        var prompt = p.EncodePrompt("Hello there");
        var o = new GenerationOptions { MaxNewTokens = 12 };
        var full = p.Generate([prompt], o)[0][0];
        var streamed = new List<int>();
        await foreach (var t in Generator.StreamAsync(p.Model, prompt, o)) streamed.Add(t);
        Assert.Equal(full.Ids, streamed);
        var text = new System.Text.StringBuilder();
        await foreach (var piece in p.StreamAsync(prompt, o)) text.Append(piece);
        Assert.Equal(full.Text, text.ToString());

        // Stop as soon as the text of the first three tokens appears.
        var stop = p.Decode(full.Ids[..3]);
        var stopped = p.Generate([prompt], o with { StopStrings = [stop] })[0][0];
        Assert.Equal("stop", stopped.FinishReason);
        Assert.True(stopped.Ids.Length <= 3);
        Assert.Contains(stop, stopped.Text);
    }

    [Fact]
    public void SamplingIsReproducibleWithASeedAndRespectsTheBudget()
    {
        using var p = Pipeline.Load(Fixtures.Path("tiny-mt5"));
        var o = new GenerationOptions { DoSample = true, Seed = 42, MaxNewTokens = 10, MinNewTokens = 10, NumReturnSequences = 3, TopK = 0 };
        var a = p.Generate([p.EncodePrompt("Bonjour")], o)[0];
        var b = p.Generate([p.EncodePrompt("Bonjour")], o)[0];
        Assert.Equal(3, a.Length);
        Assert.Equal(a.Select(x => x.Ids), b.Select(x => x.Ids));
        Assert.All(a, s => Assert.Equal(10, s.Ids.Length));
    }
}
