using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Xmtf.Generation;
using Xmtf.IO;
using Xmtf.Tensors;

namespace Xmtf.Models.T5;

/// <summary>config.json of a T5 / mT5 / mT0 checkpoint (T5 v1.1 layout).</summary>
public sealed record T5Config
{
    public int VocabSize { get; init; }
    public int DModel { get; init; }
    public int DKv { get; init; }
    public int DFf { get; init; }
    public int NumLayers { get; init; }
    public int NumDecoderLayers { get; init; }
    public int NumHeads { get; init; }
    public int NumBuckets { get; init; } = 32;
    public int MaxDistance { get; init; } = 128;
    public float Eps { get; init; } = 1e-6f;
    /// <summary>"gated-gelu" (mT5, T5 v1.1), "relu" (original T5), "gated-silu", ...</summary>
    public string FeedForwardProj { get; init; } = "relu";
    public bool TieWordEmbeddings { get; init; } = true;
    public int DecoderStartTokenId { get; init; }
    public int PadTokenId { get; init; }
    public int EosTokenId { get; init; } = 1;

    public bool IsGated => FeedForwardProj.StartsWith("gated-");
    /// <summary>The activation name; transformers maps "gated-gelu" to gelu_new (tanh) for compatibility.</summary>
    public string Activation { get; init; } = "relu";

    public static T5Config FromJson(JsonObject c)
    {
        int Req(string k) => ConfigJson.Positive(c, k);
        int Opt(string k, int fallback) => ConfigJson.Int(c, k, fallback);
        int layers = Req("num_layers");
        var cfg = new T5Config
        {
            VocabSize = Req("vocab_size"), DModel = Req("d_model"), DKv = Req("d_kv"), DFf = Req("d_ff"),
            NumLayers = layers, NumDecoderLayers = Opt("num_decoder_layers", layers), NumHeads = Req("num_heads"),
            NumBuckets = Opt("relative_attention_num_buckets", 32), MaxDistance = Opt("relative_attention_max_distance", 128),
            Eps = ConfigJson.Float(c, "layer_norm_epsilon", 1e-6f),
            FeedForwardProj = ConfigJson.String(c, "feed_forward_proj", "relu"),
            TieWordEmbeddings = ConfigJson.Bool(c, "tie_word_embeddings", true),
            DecoderStartTokenId = Opt("decoder_start_token_id", 0), PadTokenId = Opt("pad_token_id", 0), EosTokenId = Opt("eos_token_id", 1),
        };
        var act = cfg.IsGated ? cfg.FeedForwardProj["gated-".Length..] : cfg.FeedForwardProj;
        cfg = cfg with { Activation = cfg.IsGated && act == "gelu" ? "gelu_new" : act };
        if (cfg.Activation is not ("gelu_new" or "relu" or "silu"))
            throw new XmtfException($"config.json: feed_forward_proj '{cfg.FeedForwardProj}' is not supported");
        return cfg;
    }
}

/// <summary>
/// MT5ForConditionalGeneration (T5 v1.1): RMS-norm pre-LN blocks, relative position buckets computed in
/// the first layer of each stack and shared by the rest, no 1/sqrt(d) score scaling, gated-GELU feed
/// forward, untied lm_head. Tensor names follow the checkpoint's (<c>encoder.block.{i}.layer.0.SelfAttention.q</c>...).
/// </summary>
public sealed unsafe class MT5Model : IGenerativeModel, IChoiceScorer
{
    public T5Config Config { get; }
    public ModelFamily Family => ModelFamily.EncoderDecoder;
    public int VocabSize => Config.VocabSize;
    public GenerationDefaults Defaults { get; }

    sealed class AttentionWeights(Weight q, Weight k, Weight v, Weight o)
    {
        public readonly Weight Q = q, K = k, V = v, O = o;
        /// <summary>q, k and v (and k and v) as one MatMul's weights, made once (a collection expression per call allocated).</summary>
        public readonly Weight[] Qkv = [q, k, v], KV = [k, v];
    }

    sealed class Block
    {
        public required float[] SelfNorm;
        public required AttentionWeights Self;
        public float[]? CrossNorm;
        public AttentionWeights? Cross;
        public required float[] FfNorm;
        public required Weight Wi0; // wi (ungated) or wi_0
        public Weight? Wi1;
        public required Weight Wo;
        /// <summary>wi_0 and wi_1 as one MatMul's weights, made once (a collection expression per call allocated).</summary>
        public Weight[] GatedWi => _gatedWi ??= [Wi0, Wi1!];
        Weight[]? _gatedWi;
    }

    readonly Checkpoint? _checkpoint;
    readonly Weight _shared, _lmHead;
    readonly Block[] _encoder, _decoder;
    readonly float[] _encBias, _decBias; // relative_attention_bias [buckets, heads]
    readonly float[] _encFinalNorm, _decFinalNorm;
    readonly int _inner; // heads * d_kv

    MT5Model(T5Config cfg, Checkpoint ckpt, WeightType dtype)
    {
        Config = cfg;
        _checkpoint = ckpt;
        _inner = cfg.NumHeads * cfg.DKv;
        var gen = GenerationOptions.FromJson(ckpt.GenerationConfig);
        Defaults = new GenerationDefaults
        {
            EosTokenIds = EosIds(ckpt.GenerationConfig) ?? EosIds(ckpt.Config) ?? [cfg.EosTokenId],
            PadTokenId = cfg.PadTokenId,
            DecoderStartTokenId = cfg.DecoderStartTokenId,
            Options = gen,
        };
        int d = cfg.DModel, v = cfg.VocabSize;
        Weight W(string name, int rows, int cols) => ckpt.LoadWeight(name, rows, cols, dtype);
        float[] N(string name) => ckpt.ReadF32(name, d);
        AttentionWeights Att(string p) => new(W(p + ".q.weight", _inner, d), W(p + ".k.weight", _inner, d), W(p + ".v.weight", _inner, d), W(p + ".o.weight", d, _inner));
        Block B(string stack, int i, bool decoder)
        {
            string p = $"{stack}.block.{i}.layer.";
            int ff = decoder ? 2 : 1;
            return new Block
            {
                SelfNorm = N(p + "0.layer_norm.weight"),
                Self = Att(p + "0.SelfAttention"),
                CrossNorm = decoder ? N(p + "1.layer_norm.weight") : null,
                Cross = decoder ? Att(p + "1.EncDecAttention") : null,
                FfNorm = N($"{p}{ff}.layer_norm.weight"),
                Wi0 = W($"{p}{ff}.DenseReluDense.{(cfg.IsGated ? "wi_0" : "wi")}.weight", cfg.DFf, d),
                Wi1 = cfg.IsGated ? W($"{p}{ff}.DenseReluDense.wi_1.weight", cfg.DFf, d) : null,
                // T5's FFN output projection overflows in narrow types; it stays fp32 unless the file is bf16 already.
                Wo = ckpt.LoadWeight($"{p}{ff}.DenseReluDense.wo.weight", d, cfg.DFf, dtype == WeightType.I8 ? WeightType.F32 : dtype),
            };
        }
        string embName = ckpt.Has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
        _shared = W(embName, v, d);
        _encoder = Enumerable.Range(0, cfg.NumLayers).Select(i => B("encoder", i, false)).ToArray();
        _decoder = Enumerable.Range(0, cfg.NumDecoderLayers).Select(i => B("decoder", i, true)).ToArray();
        _encBias = ckpt.ReadF32("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", cfg.NumBuckets, cfg.NumHeads);
        _decBias = ckpt.ReadF32("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", cfg.NumBuckets, cfg.NumHeads);
        _encFinalNorm = N("encoder.final_layer_norm.weight");
        _decFinalNorm = N("decoder.final_layer_norm.weight");
        _lmHead = cfg.TieWordEmbeddings ? _shared : W("lm_head.weight", v, d);
    }

    static int[]? EosIds(JsonObject? j) => j?["eos_token_id"] switch
    {
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
        JsonValue x when x.TryGetValue<int>(out var e) => [e],
        _ => null,
    };

    /// <summary>Loads a checkpoint directory; weights kept as <paramref name="dtype"/> (fp32 compute either way).</summary>
    public static MT5Model Load(string dir, WeightType dtype = WeightType.F32, bool preferBin = false)
    {
        var ckpt = Checkpoint.Open(dir, preferBin);
        try { return new MT5Model(T5Config.FromJson(ckpt.Config), ckpt, dtype); }
        catch { ckpt.Dispose(); throw; }
    }

    /// <summary>transformers' <c>_relative_position_bucket</c>, in the same fp32 arithmetic.</summary>
    public static int RelativeBucket(int relative, bool bidirectional, int numBuckets, int maxDistance)
    {
        int bucket = 0;
        if (bidirectional)
        {
            numBuckets /= 2;
            if (relative > 0) bucket += numBuckets;
            relative = Math.Abs(relative);
        }
        else relative = -Math.Min(relative, 0);
        int maxExact = numBuckets / 2;
        if (relative < maxExact) return bucket + relative;
        float large = MathF.Log(relative / (float)maxExact) / (float)Math.Log(maxDistance / (double)maxExact) * (numBuckets - maxExact);
        return bucket + Math.Min(maxExact + (int)large, numBuckets - 1);
    }

    // ---- forward pieces -------------------------------------------------------------------------

    /// <summary>x = act(x), times the gate when there is one (gated-gelu: in the same parallel pass as the GELU).</summary>
    void Activate(Span<float> x, ReadOnlySpan<float> gate)
    {
        switch (Config.Activation)
        {
            case "gelu_new": Kernels.GeluTanh(x, gate); return;
            case "relu": TensorPrimitives.Max(x, 0f, x); break;
            default: // silu
                var t = x.ToArray();
                TensorPrimitives.Sigmoid(t, t);
                TensorPrimitives.Multiply(x, t, x);
                break;
        }
        if (!gate.IsEmpty) TensorPrimitives.Multiply(x, gate, x);
    }

    /// <summary>h += FFN(RMSNorm(h)) for n rows.</summary>
    void FeedForward(Block b, float[] h, int n, Scratch s)
    {
        int ff = Config.DFf;
        Kernels.RmsNorm(h, n, b.FfNorm, Config.Eps, s.Norm);
        fixed (float* pn = s.Norm, pa = s.Ff0, pg = s.Ff1, ph = h)
        {
            if (b.Wi1 is null) Kernels.MatMul(pn, n, b.Wi0, pa);
            else Kernels.MatMul(pn, n, b.GatedWi, [(nint)pa, (nint)pg]);
            Activate(new Span<float>(pa, n * ff), b.Wi1 is null ? default : new ReadOnlySpan<float>(pg, n * ff));
            Kernels.MatMul(pa, n, b.Wo, ph, accumulate: true);
        }
    }

    /// <summary>Reusable activation buffers, grown to the largest batch seen and never shrunk.</summary>
    sealed class Scratch
    {
        public float[] Norm = [], Q = [], K = [], V = [], Ctx = [], Ff0 = [], Ff1 = [];
        public void Ensure(int n, T5Config c)
        {
            int inner = c.NumHeads * c.DKv;
            if (Norm.Length >= n * c.DModel && Q.Length >= n * inner && Ff0.Length >= n * c.DFf) return;
            Norm = new float[n * c.DModel];
            Q = new float[n * inner]; K = new float[n * inner]; V = new float[n * inner]; Ctx = new float[n * inner];
            Ff0 = new float[n * c.DFf]; Ff1 = new float[n * c.DFf];
        }
    }

    void Project(float[] x, int n, Weight w, float[] y, bool accumulate = false)
    {
        fixed (float* px = x, py = y) Kernels.MatMul(px, n, w, py, accumulate);
    }

    /// <summary>Self-attention q, k and v of s.Norm into s.Q, s.K, s.V, in one pass.</summary>
    static void ProjectQkv(AttentionWeights a, int n, Scratch s)
    {
        fixed (float* px = s.Norm, pq = s.Q, pk = s.K, pv = s.V) Kernels.MatMul(px, n, a.Qkv, [(nint)pq, (nint)pk, (nint)pv]);
    }

    void Embed(ReadOnlySpan<int> ids, float[] h)
    {
        int d = Config.DModel;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)Config.VocabSize) throw new XmtfException($"token id {ids[i]} is outside the vocabulary (0..{Config.VocabSize - 1})");
            _shared.ReadRow(ids[i], h.AsSpan(i * d, d));
        }
    }

    /// <summary>
    /// The encoder over a batch padded on the right to the longest input: returns hidden states
    /// [batch, len, d_model] after the final norm, and the padding mask.
    /// </summary>
    public float[] Encode(IReadOnlyList<int[]> inputs, out int len, out bool[][] mask)
    {
        int d = Config.DModel, B = inputs.Count;
        int L = len = Math.Max(1, inputs.Max(x => x.Length));
        var m = mask = inputs.Select(x => Enumerable.Range(0, L).Select(j => j < x.Length).ToArray()).ToArray();
        int n = B * L;
        var ids = new int[n];
        for (int b = 0; b < B; b++) inputs[b].CopyTo(ids, b * L); // pad id 0 for the right padding
        var h = new float[n * d];
        Embed(ids, h);
        var s = new Scratch();
        s.Ensure(n, Config);
        int nb = Config.NumBuckets, md = Config.MaxDistance, H = Config.NumHeads;
        // Each head's bias for every key - query distance, laid out so that a query's row is one contiguous slice.
        var bias = new float[H * (2 * L - 1)];
        for (int rel = -(L - 1); rel <= L - 1; rel++)
        {
            int bucket = RelativeBucket(rel, true, nb, md);
            for (int hd = 0; hd < H; hd++) bias[hd * (2 * L - 1) + rel + L - 1] = _encBias[bucket * H + hd];
        }
        foreach (var blk in _encoder)
        {
            Kernels.RmsNorm(h, n, blk.SelfNorm, Config.Eps, s.Norm);
            ProjectQkv(blk.Self, n, s);
            Attention.Compute(s.Q, L, B, s.K, s.V, KvLayout.RowMajor(r => r * L, H, Config.DKv), H, Config.DKv, (_, _) => L, r => m[r], (_, hd, i, scores) =>
                TensorPrimitives.Add(scores, bias.AsSpan(hd * (2 * L - 1) + L - 1 - i, scores.Length), scores), 1f, s.Ctx);
            Project(s.Ctx, n, blk.Self.O, h, accumulate: true);
            FeedForward(blk, h, n, s);
        }
        Kernels.RmsNorm(h, n, _encFinalNorm, Config.Eps, h);
        return h;
    }

    // ---- decoding -------------------------------------------------------------------------------

    public IDecoderSession Start(IReadOnlyList<int[]> prompts, int copies, int maxNewTokens)
    {
        var enc = Encode(prompts, out int len, out var mask);
        return new Session(this, enc, len, mask, copies, maxNewTokens + 1);
    }

    /// <summary>
    /// Decoder state of a batch: cross-attention keys/values computed once per prompt (shared by its
    /// rows) and self-attention caches, both head-major (see <see cref="KvCache"/>), preallocated.
    /// </summary>
    sealed class Session : IDecoderSession
    {
        readonly MT5Model _m;
        readonly int _srcLen, _capacity;
        readonly bool[][] _srcMask;
        readonly KvCache _cross, _self; // cross: a "row" per prompt, srcLen positions
        int[] _prompt; // row → prompt index
        int[] _spareRows;
        int _length;
        readonly Scratch _s = new();
        float[] _h = [], _logits = [];
        readonly int[] _buckets;
        // Attention's arguments, made once: a step allocates nothing. They read _length and _prompt when called.
        readonly KvLayout _crossLayout;
        readonly Func<int, int, int> _selfCount, _crossCount;
        readonly Func<int, bool[]> _crossMask;
        readonly ScoreBias _selfBias;
        public int Rows { get; }

        public Session(MT5Model m, float[] enc, int srcLen, bool[][] srcMask, int copies, int capacity)
        {
            _m = m; _srcLen = srcLen; _srcMask = srcMask; _capacity = capacity;
            int P = srcMask.Length, inner = m._inner;
            Rows = P * copies;
            _prompt = Enumerable.Range(0, Rows).Select(r => r / copies).ToArray();
            _spareRows = new int[Rows];
            int layers = m._decoder.Length, H = m.Config.NumHeads, dkv = m.Config.DKv;
            _cross = new KvCache(layers, P, H, srcLen, dkv);
            // Projected one prompt at a time: a batch-wide buffer doubled the cross keys and values at the peak.
            var k = new float[srcLen * inner];
            var v = new float[srcLen * inner];
            int d = m.Config.DModel;
            for (int l = 0; l < layers; l++)
                for (int p = 0; p < P; p++)
                {
                    fixed (float* pe = enc, pk = k, pv = v)
                        Kernels.MatMul(pe + (long)p * srcLen * d, srcLen, m._decoder[l].Cross!.KV, [(nint)pk, (nint)pv]);
                    for (int i = 0; i < srcLen; i++) _cross.Write(l, p, i, k.AsSpan(i * inner), v.AsSpan(i * inner), dkv);
                }
            _self = new KvCache(layers, Rows, H, capacity, dkv);
            // Causal buckets of every query-key distance the cache can hold, computed once, not per step.
            _buckets = new int[capacity];
            for (int rel = 0; rel < capacity; rel++) _buckets[rel] = RelativeBucket(-rel, false, m.Config.NumBuckets, m.Config.MaxDistance);
            _crossLayout = KvLayout.HeadMajor(r => _prompt[r], H, srcLen, dkv);
            _selfCount = (_, i) => _length + i + 1;
            _crossCount = (_, _) => _srcLen;
            _crossMask = r => _srcMask[_prompt[r]];
            _selfBias = (_, hd, i, scores) =>
            {
                for (int j = 0; j < scores.Length; j++) scores[j] += _m._decBias[_buckets[_length + i - j] * H + hd];
            };
        }

        public int[] StartIds(int row) => [_m.Config.DecoderStartTokenId];

        public ReadOnlySpan<float> Prefill() => Forward(Enumerable.Repeat(_m.Config.DecoderStartTokenId, Rows).ToArray(), 1, 0);

        public ReadOnlySpan<float> Step(ReadOnlySpan<int> tokens) => Forward(tokens, 1, 0);

        /// <summary>
        /// Appends T tokens to every row; returns logits of positions [firstLogit, T) of each row,
        /// [Rows, T - firstLogit, vocab].
        /// </summary>
        public ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, int T, int firstLogit)
        {
            var m = _m;
            var c = m.Config;
            int d = c.DModel, inner = m._inner, n = Rows * T, L0 = _length, H = c.NumHeads;
            if (L0 + T > _capacity) throw new InvalidOperationException("decoder cache capacity exceeded");
            if (_h.Length < n * d) _h = new float[n * d];
            _s.Ensure(n, c);
            var h = _h;
            m.Embed(tokens, h);
            for (int l = 0; l < m._decoder.Length; l++)
            {
                var blk = m._decoder[l];
                Kernels.RmsNorm(h, n, blk.SelfNorm, c.Eps, _s.Norm);
                ProjectQkv(blk.Self, n, _s);
                for (int i = 0; i < n; i++) _self.Write(l, i / T, L0 + i % T, _s.K.AsSpan(i * inner), _s.V.AsSpan(i * inner), c.DKv);
                Attention.Compute(_s.Q, T, Rows, _self.K(l), _self.V(l), _self.Layout, H, c.DKv, _selfCount, null, _selfBias, 1f, _s.Ctx);
                m.Project(_s.Ctx, n, blk.Self.O, h, accumulate: true);

                Kernels.RmsNorm(h, n, blk.CrossNorm!, c.Eps, _s.Norm);
                m.Project(_s.Norm, n, blk.Cross!.Q, _s.Q);
                Attention.Compute(_s.Q, T, Rows, _cross.K(l), _cross.V(l), _crossLayout, H, c.DKv, _crossCount, _crossMask, null, 1f, _s.Ctx);
                m.Project(_s.Ctx, n, blk.Cross.O, h, accumulate: true);
                m.FeedForward(blk, h, n, _s);
            }
            _length += T;
            int outT = T - firstLogit, rowsOut = Rows * outT;
            float scale = c.TieWordEmbeddings ? 1f / MathF.Sqrt(d) : 1f; // tied T5 rescales before lm_head
            for (int r = 0; r < Rows; r++)
                for (int t = firstLogit; t < T; t++)
                {
                    var src = h.AsSpan((r * T + t) * d, d);
                    var dst = _s.Norm.AsSpan((r * outT + t - firstLogit) * d, d);
                    Kernels.RmsNorm(src, m._decFinalNorm, c.Eps, dst);
                    if (scale != 1f) TensorPrimitives.Multiply(dst, scale, dst);
                }
            Pooled.Grow(ref _logits, rowsOut * c.VocabSize);
            m.Project(_s.Norm, rowsOut, m._lmHead, _logits);
            return _logits.AsSpan(0, rowsOut * c.VocabSize);
        }

        public void Reorder(ReadOnlySpan<int> sources)
        {
            _self.Reorder(sources, _length);
            for (int r = 0; r < Rows; r++) _spareRows[r] = _prompt[sources[r]];
            (_prompt, _spareRows) = (_spareRows, _prompt);
        }

        public void Dispose() { }
    }

    /// <summary>Logits [decoderInputIds.Length, vocab] of one teacher-forced pass, as <c>model(input_ids, decoder_input_ids).logits</c>.</summary>
    public float[] Forward(int[] inputIds, int[] decoderInputIds)
    {
        using var session = (Session)Start([inputIds], 1, decoderInputIds.Length);
        return session.Forward(decoderInputIds, decoderInputIds.Length, 0).ToArray();
    }

    // ---- scoring --------------------------------------------------------------------------------

    /// <summary>
    /// Log-probs of each choice's tokens as decoder targets: decoder input [start] + choice[:-1], one
    /// encoder pass per request shared by its choices.
    /// </summary>
    public float[][][] ScoreTokens(IReadOnlyList<ScoreRequest> requests)
    {
        var result = new float[requests.Count][][];
        for (int q = 0; q < requests.Count; q++)
        {
            var req = requests[q];
            int nc = req.ChoiceIds.Length;
            result[q] = new float[nc][];
            if (nc == 0) continue;
            int T = Math.Max(1, req.ChoiceIds.Max(x => x.Length));
            using var session = (Session)Start([req.PromptIds], nc, T);
            var input = new int[nc * T];
            for (int c = 0; c < nc; c++)
            {
                input[c * T] = Config.DecoderStartTokenId;
                for (int t = 1; t < T; t++) input[c * T + t] = t - 1 < req.ChoiceIds[c].Length ? req.ChoiceIds[c][t - 1] : Config.PadTokenId;
            }
            var logits = session.Forward(input, T, 0);
            for (int c = 0; c < nc; c++)
                result[q][c] = Scoring.TokenLogProbs(logits, c * T, req.ChoiceIds[c], VocabSize);
        }
        return result;
    }

    /// <summary>The matrices one decode step reads (the bench's bandwidth probe streams them).</summary>
    internal IEnumerable<Weight> StepWeights() =>
        _decoder.SelectMany(b => new[] { b.Self.Q, b.Self.K, b.Self.V, b.Self.O, b.Cross!.Q, b.Cross.O, b.Wi0, b.Wi1, b.Wo })
            .OfType<Weight>().Append(_lmHead);

    public void Dispose()
    {
        foreach (var b in _encoder.Concat(_decoder))
            foreach (var w in new[] { b.Self.Q, b.Self.K, b.Self.V, b.Self.O, b.Cross?.Q, b.Cross?.K, b.Cross?.V, b.Cross?.O, b.Wi0, b.Wi1, b.Wo })
                w?.Dispose();
        _shared.Dispose();
        _lmHead.Dispose();
        _checkpoint?.Dispose();
    }
}
