using System.Text.Json;
using Xmtf.Generation;
using Xmtf.Models.T5;
using Xmtf.Tensors;

namespace Xmtf.Tests.Models;

/// <summary>Every case of the tiny-mt5 golden files (made by transformers 4.43) reproduced.</summary>
public class MT5ParityTests
{
    public static TheoryData<string, string, WeightType, bool> Variants => new()
    {
        { "tiny-mt5", "tiny-mt5", WeightType.F32, false },
        { "tiny-mt5", "tiny-mt5", WeightType.F32, true },      // pytorch_model.bin
        { "tiny-mt5-bf16", "tiny-mt5-bf16", WeightType.F32, false },
        { "tiny-mt5-bf16", "tiny-mt5-bf16", WeightType.BF16, false }, // used in place, widened in the kernel
        { "tiny-mt5-bf16-sharded", "tiny-mt5-bf16", WeightType.F32, false },
    };

    static (MT5Model, JsonElement, Dictionary<string, int[]>) Open(string dir, string golden, WeightType dtype, bool bin)
    {
        var model = MT5Model.Load(Fixtures.Path(dir), dtype, preferBin: bin);
        var g = Fixtures.Json(golden, "golden.json");
        var prompts = g.GetProperty("prompts").EnumerateArray().ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("input_ids").Ints());
        return (model, g, prompts);
    }

    [Theory, MemberData(nameof(Variants))]
    public void EncoderAndDecoderLogits(string dir, string golden, WeightType dtype, bool bin)
    {
        var (model, g, prompts) = Open(dir, golden, dtype, bin);
        using var m_ = model;
        foreach (var e in g.GetProperty("encoder_last_hidden_state").EnumerateArray())
        {
            var hidden = model.Encode([prompts[e.GetProperty("prompt").GetString()!]], out _, out _);
            Golden.AssertClose(e.GetProperty("data").Floats(), hidden, what: "encoder " + e.GetProperty("prompt"));
        }
        foreach (var e in g.GetProperty("decoder_logits").EnumerateArray())
        {
            var dec = e.GetProperty("decoder_input_ids").Ints();
            var logits = model.Forward(prompts[e.GetProperty("prompt").GetString()!], dec);
            int v = model.VocabSize;
            var argmax = Enumerable.Range(0, dec.Length).Select(t => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsSpan(t * v, v))).ToArray();
            Assert.Equal(e.GetProperty("argmax").Ints(), argmax);
            Golden.AssertClose(e.GetProperty("last_logits").Floats(), logits.AsSpan((dec.Length - 1) * v, v), what: "last logits");
            if (e.TryGetProperty("all_logits", out var all))
                Golden.AssertClose(all.GetProperty("data").Floats(), logits, what: "all logits");
        }
    }

    [Theory, MemberData(nameof(Variants))]
    public void GreedyAndBeam(string dir, string golden, WeightType dtype, bool bin)
    {
        var (model, g, prompts) = Open(dir, golden, dtype, bin);
        using var m_ = model;
        foreach (var e in g.GetProperty("greedy").EnumerateArray())
        {
            var o = new GenerationOptions { MaxNewTokens = e.GetProperty("max_new_tokens").GetInt32() };
            var seq = Generator.Generate(model, [prompts[e.GetProperty("prompt").GetString()!]], o)[0][0];
            Assert.Equal(e.GetProperty("sequence").Ints(), (int[])[0, .. seq.Tokens]);
        }
        foreach (var e in g.GetProperty("beam").EnumerateArray())
        {
            int nrs = e.GetProperty("num_return_sequences").GetInt32();
            var o = new GenerationOptions
            {
                MaxNewTokens = e.GetProperty("max_new_tokens").GetInt32(), NumBeams = e.GetProperty("num_beams").GetInt32(),
                LengthPenalty = e.GetProperty("length_penalty").GetSingle(), EarlyStopping = e.GetProperty("early_stopping").GetBoolean(),
                NumReturnSequences = nrs,
            };
            var seqs = Generator.Generate(model, [prompts[e.GetProperty("prompt").GetString()!]], o)[0];
            var expected = nrs == 1 ? [e.GetProperty("sequence").Ints()] : e.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray();
            var scores = nrs == 1 ? [e.GetProperty("sequence_score").GetSingle()] : e.GetProperty("sequence_scores").Floats();
            for (int i = 0; i < nrs; i++)
            {
                // transformers pads shorter returned sequences with pad 0 after the eos.
                var exp = expected[i].Skip(1).ToArray();
                var got = seqs[i].Tokens.Concat(Enumerable.Repeat(0, exp.Length)).Take(exp.Length).ToArray();
                Assert.Equal(exp, got);
                Assert.Equal(scores[i], seqs[i].Score!.Value, 1e-4);
            }
        }
    }

    [Theory, MemberData(nameof(Variants))]
    public void BatchedGreedyAndChoiceLogLikelihood(string dir, string golden, WeightType dtype, bool bin)
    {
        var (model, g, _) = Open(dir, golden, dtype, bin);
        using var __ = model;
        foreach (var e in g.GetProperty("batched_greedy").EnumerateArray())
        {
            var inputs = e.GetProperty("input_ids").EnumerateArray().Zip(e.GetProperty("attention_mask").EnumerateArray())
                .Select(p => p.First.Ints().Where((_, i) => p.Second[i].GetInt32() == 1).ToArray()).ToArray();
            var o = new GenerationOptions { MaxNewTokens = e.GetProperty("max_new_tokens").GetInt32() };
            var outs = Generator.Generate(model, inputs, o);
            var expected = e.GetProperty("sequences").EnumerateArray().Select(x => x.Ints()).ToArray();
            for (int b = 0; b < inputs.Length; b++)
            {
                var exp = expected[b].Skip(1).ToArray();
                Assert.Equal(exp, outs[b][0].Tokens.Concat(Enumerable.Repeat(0, exp.Length)).Take(exp.Length).ToArray());
            }
        }
        foreach (var e in g.GetProperty("choice_loglik").EnumerateArray())
        {
            var choices = e.GetProperty("choices").EnumerateArray().ToArray();
            var lp = model.ScoreTokens([new ScoreRequest(e.GetProperty("input_ids").Ints(), choices.Select(c => c.GetProperty("labels").Ints()).ToArray())])[0];
            for (int c = 0; c < choices.Length; c++)
            {
                Golden.AssertClose(choices[c].GetProperty("token_logprobs").Floats(), lp[c], what: "token logprobs");
                Assert.Equal(choices[c].GetProperty("sum_logprob").GetDouble(), lp[c].Sum(x => (double)x), 1e-3);
            }
        }
    }
}
