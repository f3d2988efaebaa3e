using System.Text;
using System.Text.Json;

namespace Xmtf.LoadTest;

/// <summary>
/// Writes an mT5 checkpoint of a given shape with random bf16 weights (safetensors + config.json) and the
/// fixture's tokenizer: throughput depends on the shape, not on the values.
/// </summary>
static class RandomMt5
{
    public static void Write(string dir, string tokenizerDir, int dModel, int dFf, int heads, int dKv, int layers, int vocab)
    {
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { "spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new
        {
            model_type = "mt5", d_model = dModel, d_ff = dFf, num_heads = heads, d_kv = dKv, num_layers = layers, num_decoder_layers = layers,
            vocab_size = vocab, feed_forward_proj = "gated-gelu", tie_word_embeddings = false, relative_attention_num_buckets = 32,
            relative_attention_max_distance = 128, layer_norm_epsilon = 1e-6, decoder_start_token_id = 0, eos_token_id = 1, pad_token_id = 0,
            is_encoder_decoder = true,
        }));
        int inner = heads * dKv;
        var tensors = new List<(string Name, int[] Shape, bool Norm)> { ("shared.weight", [vocab, dModel], false), ("lm_head.weight", [vocab, dModel], false) };
        void Attention(string p, bool bias)
        {
            tensors.AddRange([(p + ".q.weight", [inner, dModel], false), (p + ".k.weight", [inner, dModel], false), (p + ".v.weight", [inner, dModel], false), (p + ".o.weight", [dModel, inner], false)]);
            if (bias) tensors.Add((p + ".relative_attention_bias.weight", [32, heads], false));
        }
        void FeedForward(string p) => tensors.AddRange([(p + ".DenseReluDense.wi_0.weight", [dFf, dModel], false),
            (p + ".DenseReluDense.wi_1.weight", [dFf, dModel], false), (p + ".DenseReluDense.wo.weight", [dModel, dFf], false), (p + ".layer_norm.weight", [dModel], true)]);
        foreach (var stack in new[] { "encoder", "decoder" })
        {
            for (int i = 0; i < layers; i++)
            {
                var b = $"{stack}.block.{i}.layer";
                Attention($"{b}.0.SelfAttention", bias: i == 0);
                tensors.Add(($"{b}.0.layer_norm.weight", [dModel], true));
                if (stack == "decoder")
                {
                    Attention($"{b}.1.EncDecAttention", bias: false);
                    tensors.Add(($"{b}.1.layer_norm.weight", [dModel], true));
                }
                FeedForward($"{b}.{(stack == "decoder" ? 2 : 1)}");
            }
            tensors.Add(($"{stack}.final_layer_norm.weight", [dModel], true));
        }
        var header = new Dictionary<string, object> { ["__metadata__"] = new { format = "pt" } };
        long offset = 0;
        foreach (var (name, shape, _) in tensors)
        {
            long bytes = shape.Aggregate(2L, (a, x) => a * x);
            header[name] = new { dtype = "BF16", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = new BufferedStream(File.Create(Path.Combine(dir, "model.safetensors")), 1 << 20);
        file.Write(BitConverter.GetBytes((long)json.Length));
        file.Write(json);
        ulong state = 0x9E3779B97F4A7C15;
        var buffer = new byte[1 << 16];
        foreach (var (_, shape, norm) in tensors)
        {
            long count = shape.Aggregate(1L, (a, x) => a * x);
            // Weights uniform in ±1/sqrt(fan_in) keep activations in range through the layers; norms are 1.
            float scale = norm ? 0 : 1f / MathF.Sqrt(shape[^1]);
            for (long done = 0; done < count;)
            {
                int n = (int)Math.Min(buffer.Length / 2, count - done);
                for (int i = 0; i < n; i++)
                {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                    float v = norm ? 1f : ((state >> 40) / (float)(1 << 24) * 2 - 1) * scale;
                    ushort bf16 = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
                    buffer[2 * i] = (byte)bf16; buffer[2 * i + 1] = (byte)(bf16 >> 8);
                }
                file.Write(buffer, 0, 2 * n);
                done += n;
            }
        }
    }
}
