using System.Numerics.Tensors;
using System.Text.Json;
using Xmtf.Generation;
using Xmtf.Models.Bloom;
using Xmtf.Tensors;

namespace Xmtf.Tests.Models;

/// <summary>Every case of tiny-bloom/golden.json (made by transformers 4.43) reproduced.</summary>
public class BloomParityTests
{
    public static TheoryData<bool, WeightType> Variants => new() { { false, WeightType.F32 }, { true, WeightType.F32 } };

    static (BloomModel, JsonElement, int[][]) Open(bool bin, WeightType dtype)
    {
        var model = BloomModel.Load(Fixtures.Path("tiny-bloom"), dtype, preferBin: bin);
        var g = Fixtures.Json("tiny-bloom", "golden.json");
        return (model, g, g.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray());
    }

    [Theory, MemberData(nameof(Variants))]
    public void Logits(bool bin, WeightType dtype)
    {
        var (model, g, seqs) = Open(bin, dtype);
        using var m_ = model;
        int v = model.VocabSize;
        foreach (var e in g.GetProperty("logits").EnumerateArray())
        {
            var ids = seqs[e.GetProperty("seq").GetInt32()];
            var logits = model.Forward(ids);
            Assert.Equal(e.GetProperty("argmax").Ints(), Enumerable.Range(0, ids.Length).Select(t => TensorPrimitives.IndexOfMax(logits.AsSpan(t * v, v))).ToArray());
            Golden.AssertClose(e.GetProperty("last_logits").Floats(), logits.AsSpan((ids.Length - 1) * v, v), what: "last logits");
            if (e.TryGetProperty("all_logits", out var all)) Golden.AssertClose(all.GetProperty("data").Floats(), logits, what: "all logits");
        }
        var b = g.GetProperty("batched_greedy_left_padding");
        var prompts = Unpad(b);
        using var session = model.Start(prompts, 1, 0);
        Golden.AssertClose(b.GetProperty("last_logits_padded_forward").GetProperty("data").Floats(), session.Prefill(), what: "left-padded batch");
    }

    static int[][] Unpad(JsonElement b) =>
        b.GetProperty("input_ids").EnumerateArray().Zip(b.GetProperty("attention_mask").EnumerateArray())
            .Select(p => p.First.Ints().Where((_, i) => p.Second[i].GetInt32() == 1).ToArray()).ToArray();

    [Theory, MemberData(nameof(Variants))]
    public void Generation(bool bin, WeightType dtype)
    {
        var (model, g, seqs) = Open(bin, dtype);
        using var m_ = model;
        foreach (var e in g.GetProperty("greedy").EnumerateArray())
        {
            var o = new GenerationOptions { MaxNewTokens = e.GetProperty("max_new_tokens").GetInt32() };
            var outp = Generator.Generate(model, [seqs[e.GetProperty("seq").GetInt32()]], o)[0][0];
            Assert.Equal(e.GetProperty("new_tokens").Ints(), outp.Tokens);
        }
        var b = g.GetProperty("batched_greedy_left_padding");
        var prompts = Unpad(b);
        var outs = Generator.Generate(model, prompts, new GenerationOptions { MaxNewTokens = b.GetProperty("max_new_tokens").GetInt32() });
        var expected = b.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray();
        int padded = b.GetProperty("input_ids")[0].GetArrayLength();
        for (int i = 0; i < prompts.Length; i++)
        {
            var exp = expected[i][padded..];
            Assert.Equal(exp, outs[i][0].Tokens.Concat(Enumerable.Repeat(3, exp.Length)).Take(exp.Length).ToArray());
        }
        foreach (var e in g.GetProperty("beam").EnumerateArray())
        {
            var prompt = seqs[e.GetProperty("seq").GetInt32()];
            var o = new GenerationOptions
            {
                MaxNewTokens = e.GetProperty("max_new_tokens").GetInt32(), NumBeams = e.GetProperty("num_beams").GetInt32(),
                LengthPenalty = e.GetProperty("length_penalty").GetSingle(), EarlyStopping = e.GetProperty("early_stopping").GetBoolean(),
                NumReturnSequences = e.GetProperty("num_return_sequences").GetInt32(),
            };
            var outs4 = Generator.Generate(model, [prompt], o)[0];
            var expectedSeqs = o.NumReturnSequences == 1 ? [e.GetProperty("sequence").Ints()] : e.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray();
            var scores = o.NumReturnSequences == 1 ? [e.GetProperty("sequence_score").GetSingle()] : e.GetProperty("sequence_scores").Floats();
            for (int i = 0; i < expectedSeqs.Length; i++)
            {
                var exp = expectedSeqs[i][prompt.Length..];
                Assert.Equal(exp, outs4[i].Tokens.Concat(Enumerable.Repeat(3, exp.Length)).Take(exp.Length).ToArray());
                Assert.Equal(scores[i], outs4[i].Score!.Value, 1e-4);
            }
        }
        foreach (var e in g.GetProperty("choice_loglik").EnumerateArray())
        {
            var choices = e.GetProperty("choices").EnumerateArray().ToArray();
            var lp = model.ScoreTokens([new ScoreRequest(e.GetProperty("context_ids").Ints(), choices.Select(c => c.GetProperty("ids").Ints()).ToArray())])[0];
            for (int c = 0; c < choices.Length; c++)
            {
                Golden.AssertClose(choices[c].GetProperty("token_logprobs").Floats(), lp[c], what: "token logprobs");
                Assert.Equal(choices[c].GetProperty("sum_logprob").GetDouble(), lp[c].Sum(x => (double)x), 1e-3);
            }
        }
    }

    [Fact]
    public void AlibiSlopesForNonPowerOfTwoHeads()
    {
        // transformers' build_alibi_tensor for 6 heads: 4 geometric slopes of base 2^-2, then 2^-1 and 2^-3.
        Assert.Equal([0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f], BloomModel.AlibiSlopes(6));
        var s112 = BloomModel.AlibiSlopes(112);
        Assert.Equal(112, s112.Length);
        Assert.Equal(MathF.Pow(2, -8f / 64), s112[0], 6);
    }
}
