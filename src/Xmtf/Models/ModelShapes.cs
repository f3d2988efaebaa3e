using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xmtf.IO;
using Xmtf.Tensors;

namespace Xmtf.Models;

/// <summary>
/// The shapes of the released mT0 and BLOOMZ checkpoints (and of the test fixtures), as the config.json
/// transformers writes, and random-weight checkpoints of any such config: real safetensors that
/// transformers and <c>xmtf</c> load, for benchmarks where only the shape matters.
/// </summary>
public static class ModelShapes
{
    const string TransformersVersion = "4.43.4";

    /// <summary>Shape names accepted by <see cref="Config"/>.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["mt0-small", "mt0-base", "mt0-large", "mt0-xl", "bloomz-560m", "bloomz-1b7", "tiny-mt5", "tiny-bloom"];

    /// <summary>config.json of a named shape with exactly the keys transformers writes for its model type.</summary>
    public static JsonObject Config(string name, DType dtype = DType.F32) => name switch
    {
        "mt0-small" => MT5(512, 1024, 6, 8, 250112, dtype),
        "mt0-base" => MT5(768, 2048, 12, 12, 250112, dtype),
        "mt0-large" => MT5(1024, 2816, 16, 24, 250112, dtype),
        "mt0-xl" => MT5(2048, 5120, 32, 24, 250112, dtype),
        "bloomz-560m" => Bloom(1024, 16, 24, 250880, 0.02, dtype),
        "bloomz-1b7" => Bloom(2048, 16, 24, 250880, 0.02, dtype),
        // The shapes of shared/fixtures/tiny-*: written and loaded in milliseconds, for tests.
        "tiny-mt5" => MT5Shape(64, 128, 4, 16, 2, 1600, dtype),
        "tiny-bloom" => Bloom(64, 4, 2, 512, 0.2, dtype),
        _ => throw new XmtfException($"unknown model shape '{name}' (known: {string.Join(", ", Names)})"),
    };

    static JsonObject MT5(int d, int ff, int heads, int layers, int vocab, DType dtype) => MT5Shape(d, ff, heads, 64, layers, vocab, dtype);

    static JsonObject MT5Shape(int d, int ff, int heads, int dkv, int layers, int vocab, DType dtype) => new()
    {
        ["architectures"] = new JsonArray("MT5ForConditionalGeneration"),
        ["classifier_dropout"] = 0.0, ["d_ff"] = ff, ["d_kv"] = dkv, ["d_model"] = d, ["decoder_start_token_id"] = 0,
        ["dense_act_fn"] = "gelu_new", ["dropout_rate"] = 0.1, ["eos_token_id"] = 1, ["feed_forward_proj"] = "gated-gelu",
        ["initializer_factor"] = 1.0, ["is_encoder_decoder"] = true, ["is_gated_act"] = true, ["layer_norm_epsilon"] = 1e-06,
        ["model_type"] = "mt5", ["num_decoder_layers"] = layers, ["num_heads"] = heads, ["num_layers"] = layers, ["pad_token_id"] = 0,
        ["relative_attention_max_distance"] = 128, ["relative_attention_num_buckets"] = 32, ["tie_word_embeddings"] = false,
        ["tokenizer_class"] = "T5Tokenizer", ["torch_dtype"] = TorchDType(dtype), ["transformers_version"] = TransformersVersion,
        ["use_cache"] = true, ["vocab_size"] = vocab,
    };

    static JsonObject Bloom(int hidden, int heads, int layers, int vocab, double initRange, DType dtype) => new()
    {
        ["apply_residual_connection_post_layernorm"] = false, ["architectures"] = new JsonArray("BloomForCausalLM"),
        ["attention_dropout"] = 0.0, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["hidden_dropout"] = 0.0, ["hidden_size"] = hidden,
        ["initializer_range"] = initRange, ["layer_norm_epsilon"] = 1e-05, ["model_type"] = "bloom", ["n_head"] = heads,
        ["n_layer"] = layers, ["pad_token_id"] = 3, ["pretraining_tp"] = 1, ["slow_but_exact"] = false,
        ["torch_dtype"] = TorchDType(dtype), ["transformers_version"] = TransformersVersion, ["use_cache"] = true, ["vocab_size"] = vocab,
    };

    static string TorchDType(DType t) => t switch
    {
        DType.F32 => "float32",
        DType.BF16 => "bfloat16",
        _ => throw new XmtfException($"random checkpoints are written as F32 or BF16, not {t}"),
    };

    /// <summary>generation_config.json as transformers derives it from the model config.</summary>
    public static JsonObject GenerationConfig(JsonObject config)
    {
        var g = new JsonObject { ["_from_model_config"] = true };
        foreach (var k in new[] { "bos_token_id", "decoder_start_token_id", "eos_token_id", "pad_token_id" })
            if (config[k] is { } v) g[k] = v.DeepClone();
        g["transformers_version"] = TransformersVersion;
        return g;
    }

    /// <summary>
    /// One tensor of a random checkpoint: elements are <c>Mean + Std * N(0, 1)</c> (Std 0 for norms and biases).
    /// The stds are transformers' own initializers, so activations stay in their usual range.
    /// </summary>
    public sealed record RandomTensor(string Name, long[] Shape, float Std, float Mean = 0);

    /// <summary>The tensors of a T5/mT5 or BLOOM config, named as transformers' <c>save_pretrained</c> names them.</summary>
    public static IReadOnlyList<RandomTensor> Tensors(JsonObject config)
    {
        int I(string k) => config[k]!.GetValue<int>();
        var list = new List<RandomTensor>();
        switch (config["model_type"]?.GetValue<string>())
        {
            case "mt5" or "t5":
            {
                // T5PreTrainedModel._init_weights with initializer_factor 1.
                int d = I("d_model"), dkv = I("d_kv"), ff = I("d_ff"), heads = I("num_heads"), inner = heads * dkv, v = I("vocab_size");
                bool gated = config["feed_forward_proj"]!.GetValue<string>().StartsWith("gated-");
                float sd = 1 / MathF.Sqrt(d);
                void Norm(string name) => list.Add(new(name, [d], 0, 1));
                void Attention(string p, bool bias)
                {
                    list.Add(new($"{p}.q.weight", [inner, d], 1 / MathF.Sqrt((float)d * dkv)));
                    list.Add(new($"{p}.k.weight", [inner, d], sd));
                    list.Add(new($"{p}.v.weight", [inner, d], sd));
                    list.Add(new($"{p}.o.weight", [d, inner], 1 / MathF.Sqrt(inner)));
                    if (bias) list.Add(new($"{p}.relative_attention_bias.weight", [I("relative_attention_num_buckets"), heads], sd));
                }
                void FeedForward(string p)
                {
                    foreach (var wi in gated ? new[] { "wi_0", "wi_1" } : ["wi"]) list.Add(new($"{p}.DenseReluDense.{wi}.weight", [ff, d], sd));
                    list.Add(new($"{p}.DenseReluDense.wo.weight", [d, ff], 1 / MathF.Sqrt(ff)));
                    Norm($"{p}.layer_norm.weight");
                }
                list.Add(new("shared.weight", [v, d], 1));
                foreach (var (stack, layers) in new[] { ("encoder", I("num_layers")), ("decoder", config["num_decoder_layers"] is { } n ? n.GetValue<int>() : I("num_layers")) })
                {
                    for (int i = 0; i < layers; i++)
                    {
                        string p = $"{stack}.block.{i}.layer";
                        Attention($"{p}.0.SelfAttention", i == 0);
                        Norm($"{p}.0.layer_norm.weight");
                        if (stack == "decoder")
                        {
                            Attention($"{p}.1.EncDecAttention", false);
                            Norm($"{p}.1.layer_norm.weight");
                        }
                        FeedForward($"{p}.{(stack == "decoder" ? 2 : 1)}");
                    }
                    Norm($"{stack}.final_layer_norm.weight");
                }
                if (config["tie_word_embeddings"]?.GetValue<bool>() == false) list.Add(new("lm_head.weight", [v, d], 1));
                break;
            }
            case "bloom":
            {
                // BloomPreTrainedModel._init_weights; lm_head is tied to word_embeddings and not saved.
                int h = I("hidden_size"), v = I("vocab_size");
                float std = (float)config["initializer_range"]!.GetValue<double>();
                void LayerNorm(string p) { list.Add(new($"{p}.weight", [h], 0, 1)); list.Add(new($"{p}.bias", [h], 0)); }
                void Linear(string p, int rows, int cols) { list.Add(new($"{p}.weight", [rows, cols], std)); list.Add(new($"{p}.bias", [rows], 0)); }
                list.Add(new("transformer.word_embeddings.weight", [v, h], std));
                LayerNorm("transformer.word_embeddings_layernorm");
                for (int i = 0; i < I("n_layer"); i++)
                {
                    string p = $"transformer.h.{i}";
                    LayerNorm($"{p}.input_layernorm");
                    Linear($"{p}.self_attention.query_key_value", 3 * h, h);
                    Linear($"{p}.self_attention.dense", h, h);
                    LayerNorm($"{p}.post_attention_layernorm");
                    Linear($"{p}.mlp.dense_h_to_4h", 4 * h, h);
                    Linear($"{p}.mlp.dense_4h_to_h", h, 4 * h);
                }
                LayerNorm("transformer.ln_f");
                break;
            }
            default:
                throw new XmtfException($"random weights: model_type '{config["model_type"]}' is not supported (mt5, t5 and bloom are)");
        }
        return list;
    }

    /// <summary>
    /// Writes config.json, generation_config.json and model.safetensors with random weights of
    /// <paramref name="dtype"/> (F32 or BF16) into <paramref name="dir"/>. Deterministic for a seed, and
    /// streamed: memory stays at a few chunk buffers whatever the model size.
    /// </summary>
    public static void WriteRandom(string dir, JsonObject config, DType dtype, ulong seed)
    {
        var cfg = (JsonObject)config.DeepClone();
        cfg["torch_dtype"] = TorchDType(dtype); // throws for other types before anything is written
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), PythonJson(cfg));
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), PythonJson(GenerationConfig(cfg)));
        var tensors = Tensors(cfg);
        SafeTensorsFile.Write(Path.Combine(dir, "model.safetensors"),
            tensors.Select(t => new TensorInfo(t.Name, dtype, t.Shape)).ToList(),
            (i, stream) => WriteRandom(stream, tensors[i], dtype, seed, (ulong)i));
    }

    /// <summary>
    /// JSON as transformers writes configs (<c>json.dumps(indent=2, sort_keys=True)</c>, keys already in order):
    /// floats in Python's repr (0.0, 1e-06), which System.Text.Json would write as 0 and 1E-06.
    /// </summary>
    static string PythonJson(JsonObject o)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentSize = 2 }))
            Write(w, o);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";

        static void Write(Utf8JsonWriter w, JsonNode? node)
        {
            switch (node)
            {
                case JsonObject obj:
                    w.WriteStartObject();
                    foreach (var (k, v) in obj) { w.WritePropertyName(k); Write(w, v); }
                    w.WriteEndObject();
                    break;
                case JsonArray arr:
                    w.WriteStartArray();
                    foreach (var v in arr) Write(w, v);
                    w.WriteEndArray();
                    break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.Number && !v.TryGetValue<int>(out _):
                    double d = v.GetValue<double>();
                    w.WriteRawValue(d == Math.Floor(d) && Math.Abs(d) < 1e16 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant());
                    break;
                default:
                    if (node is null) w.WriteNullValue(); else node.WriteTo(w);
                    break;
            }
        }
    }

    const int Chunk = 1 << 16;        // elements per independently seeded chunk
    const int ChunksPerBatch = 64;    // chunks generated in parallel before one write

    static void WriteRandom(Stream stream, RandomTensor t, DType dtype, ulong seed, ulong tensorIndex)
    {
        long n = t.Shape.Aggregate(1L, (a, b) => a * b);
        int size = dtype.Size();
        var buffer = new byte[(long)Chunk * ChunksPerBatch * size];
        for (long start = 0; start < n; start += (long)Chunk * ChunksPerBatch)
        {
            int count = (int)Math.Min(n - start, (long)Chunk * ChunksPerBatch);
            // Each chunk has its own seed, so the weights do not depend on the thread count.
            Parallel.For(0, (count + Chunk - 1) / Chunk, c =>
            {
                int len = Math.Min(Chunk, count - c * Chunk);
                var rng = new Normal(seed, tensorIndex, (ulong)((start / Chunk) + c));
                var dst = buffer.AsSpan(c * Chunk * size, len * size);
                if (dtype == DType.F32)
                    foreach (ref var x in MemoryMarshal.Cast<byte, float>(dst)) x = t.Mean + t.Std * rng.Next();
                else
                    foreach (ref var x in MemoryMarshal.Cast<byte, ushort>(dst)) x = Weight.ToBF16(t.Mean + t.Std * rng.Next());
            });
            stream.Write(buffer, 0, count * size);
        }
    }

    /// <summary>Standard normal numbers: xorshift64* uniforms through Box-Muller (both outputs used).</summary>
    struct Normal
    {
        ulong _state;
        float _spare;
        bool _hasSpare;

        public Normal(ulong seed, ulong stream, ulong chunk)
        {
            // splitmix64 of the three keys: well-mixed, never-zero xorshift states for neighbouring chunks.
            ulong z = seed * 0x9E3779B97F4A7C15UL ^ stream * 0xBF58476D1CE4E5B9UL ^ chunk * 0x94D049BB133111EBUL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            _state = (z ^ (z >> 31)) | 1;
            _spare = 0; _hasSpare = false;
        }

        double Uniform()
        {
            _state ^= _state >> 12; _state ^= _state << 25; _state ^= _state >> 27;
            return ((_state * 0x2545F4914F6CDD1DUL) >> 11) * (1.0 / (1UL << 53));
        }

        public float Next()
        {
            if (_hasSpare) { _hasSpare = false; return _spare; }
            double u = 1 - Uniform(), r = Math.Sqrt(-2 * Math.Log(u)), a = 2 * Math.PI * Uniform();
            _spare = (float)(r * Math.Sin(a));
            _hasSpare = true;
            return (float)(r * Math.Cos(a));
        }
    }
}
