using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Xmtf.Generation;
using Xmtf.IO;

namespace Xmtf.Tests.Models;

/// <summary>
/// Random checkpoints of shapes the fixtures don't have (6 ALiBi heads, post-LN BLOOM; ReLU T5 with
/// tied embeddings, 3 heads, uneven stacks). No reference exists, so these check the invariants that
/// must hold for any weights: cached decoding equals a full forward pass, batches equal single runs,
/// and the CLI runs end to end.
/// </summary>
public sealed class UnseenShapeTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("xmtf-shapes-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    static byte[] Random(Random rnd, long n, float std)
    {
        var f = new float[n];
        for (long i = 0; i < n; i++) f[i] = (float)((rnd.NextDouble() * 2 - 1) * std * 1.7);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
    }

    string Write(string name, JsonObject config, IEnumerable<(string Name, long[] Shape)> tensors, string tokenizerFrom, params string[] tokenizerFiles)
    {
        var d = Path.Combine(_dir, name);
        Directory.CreateDirectory(d);
        File.WriteAllText(Path.Combine(d, "config.json"), config.ToJsonString());
        var rnd = new Random(7);
        SafeTensorsFile.Write(Path.Combine(d, "model.safetensors"), tensors.Select(t =>
            (t.Name, DType.F32, t.Shape, t.Name.Contains("norm") || t.Name.Contains("ln_f") ? Enumerable.Repeat(1f, (int)t.Shape[0]).SelectMany(BitConverter.GetBytes).ToArray()
                : Random(rnd, t.Shape.Aggregate(1L, (a, b) => a * b), 0.3f))));
        foreach (var f in tokenizerFiles) File.Copy(Fixtures.Path(tokenizerFrom, f), Path.Combine(d, f));
        return d;
    }

    string Bloom6Heads(bool postLn)
    {
        int h = 48, v = 512, layers = 3;
        var cfg = new JsonObject
        {
            ["model_type"] = "bloom", ["vocab_size"] = v, ["hidden_size"] = h, ["n_layer"] = layers, ["n_head"] = 6,
            ["layer_norm_epsilon"] = 1e-5, ["apply_residual_connection_post_layernorm"] = postLn,
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 3,
        };
        var t = new List<(string, long[])> { ("transformer.word_embeddings.weight", [v, h]), ("transformer.word_embeddings_layernorm.weight", [h]), ("transformer.word_embeddings_layernorm.bias", [h]), ("transformer.ln_f.weight", [h]), ("transformer.ln_f.bias", [h]) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"transformer.h.{i}.";
            t.AddRange([(p + "input_layernorm.weight", [h]), (p + "input_layernorm.bias", [h]), (p + "post_attention_layernorm.weight", [h]), (p + "post_attention_layernorm.bias", [h]),
                (p + "self_attention.query_key_value.weight", [3 * h, h]), (p + "self_attention.query_key_value.bias", [3 * h]),
                (p + "self_attention.dense.weight", [h, h]), (p + "self_attention.dense.bias", [h]),
                (p + "mlp.dense_h_to_4h.weight", [4 * h, h]), (p + "mlp.dense_h_to_4h.bias", [4 * h]), (p + "mlp.dense_4h_to_h.weight", [h, 4 * h]), (p + "mlp.dense_4h_to_h.bias", [h])]);
        }
        return Write(postLn ? "bloom6post" : "bloom6", cfg, t, "tiny-bloom", "tokenizer.json", "tokenizer_config.json");
    }

    string T5Relu()
    {
        int d = 32, dkv = 8, heads = 3, ff = 48, v = 1600, inner = dkv * heads;
        var cfg = new JsonObject
        {
            ["model_type"] = "t5", ["vocab_size"] = v, ["d_model"] = d, ["d_kv"] = dkv, ["d_ff"] = ff, ["num_layers"] = 3, ["num_decoder_layers"] = 1,
            ["num_heads"] = heads, ["relative_attention_num_buckets"] = 16, ["relative_attention_max_distance"] = 64, ["feed_forward_proj"] = "relu",
            ["tie_word_embeddings"] = true, ["decoder_start_token_id"] = 0, ["pad_token_id"] = 0, ["eos_token_id"] = 1, ["layer_norm_epsilon"] = 1e-6,
        };
        var t = new List<(string, long[])> { ("shared.weight", [v, d]), ("encoder.final_layer_norm.weight", [d]), ("decoder.final_layer_norm.weight", [d]),
            ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [16, heads]), ("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [16, heads]) };
        void Att(string p) => t.AddRange([(p + ".q.weight", [inner, d]), (p + ".k.weight", [inner, d]), (p + ".v.weight", [inner, d]), (p + ".o.weight", [d, inner])]);
        for (int i = 0; i < 3; i++)
        {
            Att($"encoder.block.{i}.layer.0.SelfAttention");
            t.AddRange([($"encoder.block.{i}.layer.0.layer_norm.weight", [d]), ($"encoder.block.{i}.layer.1.layer_norm.weight", [d]),
                ($"encoder.block.{i}.layer.1.DenseReluDense.wi.weight", [ff, d]), ($"encoder.block.{i}.layer.1.DenseReluDense.wo.weight", [d, ff])]);
        }
        Att("decoder.block.0.layer.0.SelfAttention");
        Att("decoder.block.0.layer.1.EncDecAttention");
        t.AddRange([("decoder.block.0.layer.0.layer_norm.weight", [d]), ("decoder.block.0.layer.1.layer_norm.weight", [d]), ("decoder.block.0.layer.2.layer_norm.weight", [d]),
            ("decoder.block.0.layer.2.DenseReluDense.wi.weight", [ff, d]), ("decoder.block.0.layer.2.DenseReluDense.wo.weight", [d, ff])]);
        return Write("t5relu", cfg, t, "tiny-mt5", "spiece.model", "tokenizer_config.json");
    }

    [Theory, InlineData(false), InlineData(true)]
    public void BloomCachedDecodingBatchingAndPaddingAgree(bool postLn)
    {
        using var p = Pipeline.Load(Bloom6Heads(postLn));
        var model = (Xmtf.Models.Bloom.BloomModel)p.Model;
        var prompts = new[] { p.EncodePrompt("Hello world, how are you"), p.EncodePrompt("Hi") };
        var o = new GenerationOptions { MaxNewTokens = 6 };
        var batched = p.Generate(prompts, o);
        for (int i = 0; i < prompts.Length; i++)
        {
            var single = p.Generate([prompts[i]], o)[0][0];
            Assert.Equal(single.Ids, batched[i][0].Ids);
            // The last cached step's logits equal a full forward pass over prompt + generated tokens.
            int[] all = [.. prompts[i], .. single.Ids[..^1]];
            var full = model.Forward(all);
            int vocab = model.VocabSize;
            Assert.Equal(single.Ids[^1], TensorPrimitives.IndexOfMax(full.AsSpan((all.Length - 1) * vocab, vocab)));
        }
        var (code, outp, err) = Cli.XmtfProcess.Run("generate", "--model", p.Directory, "--max-new-tokens", "6", "--json", "Hello world, how are you");
        Assert.True(code == 0, err);
        Assert.Contains($"\"ids\":[{string.Join(',', batched[0][0].Ids)}]", outp);
    }

    [Fact]
    public void T5WithTiedEmbeddingsAndReluAgrees()
    {
        using var p = Pipeline.Load(T5Relu());
        var model = (Xmtf.Models.T5.MT5Model)p.Model;
        var prompts = new[] { p.EncodePrompt("Translate to English: Je t’aime."), p.EncodePrompt("Bonjour") };
        var o = new GenerationOptions { MaxNewTokens = 6 };
        var batched = p.Generate(prompts, o);
        for (int i = 0; i < prompts.Length; i++)
        {
            var single = p.Generate([prompts[i]], o)[0][0];
            Assert.Equal(single.Ids, batched[i][0].Ids);
            int[] dec = [0, .. single.Ids[..^1]];
            var full = model.Forward(prompts[i], dec);
            Assert.Equal(single.Ids[^1], TensorPrimitives.IndexOfMax(full.AsSpan((dec.Length - 1) * model.VocabSize, model.VocabSize)));
        }
        var beams = p.Generate(prompts, o with { NumBeams = 3, NumReturnSequences = 2 });
        Assert.All(beams, b => Assert.Equal(2, b.Length));
        var (code, _, err) = Cli.XmtfProcess.Run("score", "--model", p.Directory, "--prompt", "Bonjour", "--choice", "a", "--choice", "b", "--json");
        Assert.True(code == 0, err);
    }
}
