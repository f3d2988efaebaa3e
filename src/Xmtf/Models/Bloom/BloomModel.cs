using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Xmtf.Generation;
using Xmtf.IO;
using Xmtf.Tensors;

namespace Xmtf.Models.Bloom;

/// <summary>config.json of a BLOOM / BLOOMZ checkpoint.</summary>
public sealed record BloomConfig
{
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public float Eps { get; init; } = 1e-5f;
    public bool ResidualPostLayerNorm { get; init; }
    public int BosTokenId { get; init; } = 1;
    public int EosTokenId { get; init; } = 2;
    public int PadTokenId { get; init; } = 3;
    public int HeadDim => HiddenSize / NumHeads;

    public static BloomConfig FromJson(JsonObject c)
    {
        int Get(string k, string? alias = null) => ConfigJson.Positive(c, k, alias);
        int Opt(string k, int fallback) => ConfigJson.Int(c, k, fallback);
        var cfg = new BloomConfig
        {
            VocabSize = Get("vocab_size"), HiddenSize = Get("hidden_size", "n_embed"), NumLayers = Get("n_layer", "num_hidden_layers"),
            NumHeads = Get("n_head", "num_attention_heads"),
            Eps = ConfigJson.Float(c, "layer_norm_epsilon", 1e-5f),
            ResidualPostLayerNorm = ConfigJson.Bool(c, "apply_residual_connection_post_layernorm", false),
            BosTokenId = Opt("bos_token_id", 1), EosTokenId = Opt("eos_token_id", 2), PadTokenId = Opt("pad_token_id", 3),
        };
        if (cfg.HiddenSize % cfg.NumHeads != 0) throw new XmtfException($"config.json: hidden_size {cfg.HiddenSize} is not divisible by n_head {cfg.NumHeads}");
        return cfg;
    }
}

/// <summary>
/// BloomForCausalLM: embeddings + word_embeddings_layernorm, pre-LN blocks (LayerNorm with bias, fused
/// per-head query_key_value, ALiBi instead of positions, tanh GELU MLP), ln_f, lm_head tied to the
/// embeddings. ALiBi positions come from the attention mask, so left padding does not shift them.
/// </summary>
public sealed unsafe class BloomModel : IGenerativeModel, IChoiceScorer
{
    public BloomConfig Config { get; }
    public ModelFamily Family => ModelFamily.DecoderOnly;
    public int VocabSize => Config.VocabSize;
    public GenerationDefaults Defaults { get; }

    sealed class Block
    {
        public required float[] InputNormW, InputNormB, PostNormW, PostNormB;
        public required Weight Qkv, Dense, Up, Down;
        public required float[] QkvBias, DenseBias, UpBias, DownBias;
    }

    readonly Checkpoint _checkpoint;
    readonly Weight _embed;
    readonly float[] _embedNormW, _embedNormB, _finalNormW, _finalNormB;
    readonly Block[] _blocks;
    readonly float[] _slopes;

    BloomModel(BloomConfig cfg, Checkpoint ckpt, WeightType dtype)
    {
        Config = cfg;
        _checkpoint = ckpt;
        // bigscience's .bin files name tensors without the "transformer." prefix that safetensors have.
        string prefix = ckpt.Has("transformer.word_embeddings.weight") ? "transformer." : "";
        int hs = cfg.HiddenSize, v = cfg.VocabSize;
        Weight W(string name, int rows, int cols) => ckpt.LoadWeight(prefix + name, rows, cols, dtype);
        float[] F(string name, int n) => ckpt.ReadF32(prefix + name, n);
        _embed = W("word_embeddings.weight", v, hs);
        _embedNormW = F("word_embeddings_layernorm.weight", hs);
        _embedNormB = F("word_embeddings_layernorm.bias", hs);
        _blocks = Enumerable.Range(0, cfg.NumLayers).Select(i =>
        {
            string p = $"h.{i}.";
            return new Block
            {
                InputNormW = F(p + "input_layernorm.weight", hs), InputNormB = F(p + "input_layernorm.bias", hs),
                PostNormW = F(p + "post_attention_layernorm.weight", hs), PostNormB = F(p + "post_attention_layernorm.bias", hs),
                Qkv = W(p + "self_attention.query_key_value.weight", 3 * hs, hs), QkvBias = F(p + "self_attention.query_key_value.bias", 3 * hs),
                Dense = W(p + "self_attention.dense.weight", hs, hs), DenseBias = F(p + "self_attention.dense.bias", hs),
                Up = W(p + "mlp.dense_h_to_4h.weight", 4 * hs, hs), UpBias = F(p + "mlp.dense_h_to_4h.bias", 4 * hs),
                Down = W(p + "mlp.dense_4h_to_h.weight", hs, 4 * hs), DownBias = F(p + "mlp.dense_4h_to_h.bias", hs),
            };
        }).ToArray();
        _finalNormW = F("ln_f.weight", hs);
        _finalNormB = F("ln_f.bias", hs);
        if (ckpt.Has("lm_head.weight") && !ckpt.Info("lm_head.weight").Shape.SequenceEqual([v, hs]))
            throw new XmtfException("lm_head.weight does not match the embeddings' shape");
        _slopes = AlibiSlopes(cfg.NumHeads);
        Defaults = new GenerationDefaults
        {
            EosTokenIds = [cfg.EosTokenId],
            PadTokenId = cfg.PadTokenId,
            BosTokenId = cfg.BosTokenId,
            Options = GenerationOptions.FromJson(ckpt.GenerationConfig),
        };
    }

    /// <summary>Loads a checkpoint directory; weights kept as <paramref name="dtype"/> (fp32 compute either way).</summary>
    public static BloomModel Load(string dir, WeightType dtype = WeightType.F32, bool preferBin = false)
    {
        var ckpt = Checkpoint.Open(dir, preferBin);
        try { return new BloomModel(BloomConfig.FromJson(ckpt.Config), ckpt, dtype); }
        catch { ckpt.Dispose(); throw; }
    }

    /// <summary>
    /// ALiBi slopes as transformers' build_alibi_tensor: geometric for the closest power of two, then
    /// every other slope of the next power of two for the remaining heads (e.g. 112 heads of bloom-176b).
    /// </summary>
    public static float[] AlibiSlopes(int heads)
    {
        int closest = 1 << (int)Math.Floor(Math.Log2(heads));
        float Base(int n) => (float)Math.Pow(2, -Math.Pow(2, -(Math.Log2(n) - 3)));
        var slopes = new float[heads];
        float b = Base(closest);
        for (int i = 0; i < closest; i++) slopes[i] = MathF.Pow(b, i + 1);
        float eb = Base(2 * closest);
        for (int i = 0; i < heads - closest; i++) slopes[closest + i] = MathF.Pow(eb, 2 * i + 1);
        return slopes;
    }

    /// <summary>y (+)= x·Wᵀ + bias.</summary>
    void Project(float[] x, int n, Weight w, float[] bias, float[] y, bool accumulate = false)
    {
        fixed (float* px = x, py = y) Kernels.MatMul(px, n, w, py, accumulate);
        for (int i = 0; i < n; i++) TensorPrimitives.Add(y.AsSpan(i * w.Rows, w.Rows), bias, y.AsSpan(i * w.Rows, w.Rows));
    }

    public IDecoderSession Start(IReadOnlyList<int[]> prompts, int copies, int maxNewTokens) => new Session(this, prompts, copies, maxNewTokens);

    /// <summary>Logits [ids.Length, vocab] of one sequence, as <c>model(input_ids).logits</c>.</summary>
    public float[] Forward(int[] ids)
    {
        using var s = new Session(this, [ids], 1, 0);
        return s.Forward(s.PaddedPrompts, ids.Length, 0).ToArray();
    }

    /// <summary>
    /// A batch of rows sharing one length: prompts left-padded with pad id and masked out, per-row ALiBi
    /// positions from the mask, and K/V caches (<see cref="KvCache"/>), preallocated.
    /// </summary>
    sealed class Session : IDecoderSession
    {
        readonly BloomModel _m;
        readonly int _capacity, _promptLen;
        readonly bool[][] _mask;   // row → key position → real token
        readonly float[][] _pos;   // row → key position → ALiBi position (as float: the bias is one vector multiply-add)
        readonly int[][] _startIds;
        readonly KvCache _cache;
        bool[][] _spareMask;
        float[][] _sparePos;
        int _length;
        float[] _h = [], _norm = [], _qkv = [], _q = [], _kn = [], _vn = [], _ctx = [], _up = [], _logits = [];
        // Attention's arguments, made once: a step allocates nothing. They read _length, _mask and _pos when called.
        readonly Func<int, int, int> _keyCount;
        readonly Func<int, bool[]> _keyMask;
        readonly ScoreBias _alibi;
        public int Rows { get; }
        public int[] PaddedPrompts { get; }

        public Session(BloomModel m, IReadOnlyList<int[]> prompts, int copies, int maxNewTokens)
        {
            _m = m;
            if (prompts.Any(p => p.Length == 0)) throw new XmtfException("a BLOOM prompt needs at least one token");
            _promptLen = prompts.Max(p => p.Length);
            _capacity = _promptLen + maxNewTokens;
            Rows = prompts.Count * copies;
            int hs = m.Config.HiddenSize;
            _mask = new bool[Rows][]; _pos = new float[Rows][]; _startIds = new int[Rows][];
            PaddedPrompts = new int[Rows * _promptLen];
            for (int r = 0; r < Rows; r++)
            {
                var p = prompts[r / copies];
                int pad = _promptLen - p.Length;
                _mask[r] = new bool[_capacity]; _pos[r] = new float[_capacity];
                _startIds[r] = [.. Enumerable.Repeat(m.Config.PadTokenId, pad), .. p];
                _startIds[r].CopyTo(PaddedPrompts, r * _promptLen);
                for (int j = pad; j < _promptLen; j++) { _mask[r][j] = true; _pos[r][j] = j - pad; }
            }
            _spareMask = _mask.Select(x => (bool[])x.Clone()).ToArray();
            _sparePos = _pos.Select(x => (float[])x.Clone()).ToArray();
            _cache = new KvCache(m._blocks.Length, Rows, m.Config.NumHeads, _capacity, m.Config.HeadDim);
            _keyCount = (_, i) => _length + i + 1;
            _keyMask = r => _mask[r];
            _alibi = (r, hh, _, scores) => TensorPrimitives.MultiplyAdd(_pos[r].AsSpan(0, scores.Length), _m._slopes[hh], scores, scores);
        }

        public int[] StartIds(int row) => _startIds[row];

        public ReadOnlySpan<float> Prefill() => Forward(PaddedPrompts, _promptLen, _promptLen - 1);

        public ReadOnlySpan<float> Step(ReadOnlySpan<int> tokens)
        {
            for (int r = 0; r < Rows; r++)
            {
                _mask[r][_length] = true;
                _pos[r][_length] = _length == 0 ? 0 : _pos[r][_length - 1] + (_mask[r][_length - 1] ? 1 : 0);
            }
            return Forward(tokens, 1, 0);
        }

        static void Grow(ref float[] a, int n) { if (a.Length < n) a = new float[n]; }

        /// <summary>
        /// Appends T tokens per row (positions [length, length+T), mask and positions already set);
        /// returns logits of positions [firstLogit, T) of each row, [Rows, T - firstLogit, vocab].
        /// </summary>
        public ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, int T, int firstLogit)
        {
            var m = _m; var c = m.Config;
            int hs = c.HiddenSize, H = c.NumHeads, hd = c.HeadDim, n = Rows * T, L0 = _length;
            if (L0 + T > _capacity) throw new InvalidOperationException("cache capacity exceeded");
            Grow(ref _h, n * hs); Grow(ref _norm, n * hs); Grow(ref _qkv, n * 3 * hs); Grow(ref _q, n * hs);
            Grow(ref _kn, n * hs); Grow(ref _vn, n * hs); Grow(ref _ctx, n * hs); Grow(ref _up, n * 4 * hs);
            var h = _h;
            for (int i = 0; i < n; i++)
            {
                if ((uint)tokens[i] >= (uint)c.VocabSize) throw new XmtfException($"token id {tokens[i]} is outside the vocabulary (0..{c.VocabSize - 1})");
                m._embed.ReadRow(tokens[i], _norm.AsSpan(i * hs, hs));
                Kernels.LayerNorm(_norm.AsSpan(i * hs, hs), m._embedNormW, m._embedNormB, c.Eps, h.AsSpan(i * hs, hs));
            }
            float scale = 1f / MathF.Sqrt(hd);
            for (int l = 0; l < m._blocks.Length; l++)
            {
                var blk = m._blocks[l];
                Kernels.LayerNorm(h, n, blk.InputNormW, blk.InputNormB, c.Eps, _norm);
                // The residual is the normed input in the post-LN variant.
                if (c.ResidualPostLayerNorm) Array.Copy(_norm, h, n * hs);
                m.Project(_norm, n, blk.Qkv, blk.QkvBias, _qkv);
                // query_key_value is laid out per head: [head][q|k|v][head_dim].
                for (int i = 0; i < n; i++)
                {
                    for (int hh = 0; hh < H; hh++) _qkv.AsSpan(i * 3 * hs + hh * 3 * hd, hd).CopyTo(_q.AsSpan(i * hs + hh * hd, hd));
                    _cache.Write(l, i / T, L0 + i % T, _qkv.AsSpan(i * 3 * hs + hd), _qkv.AsSpan(i * 3 * hs + 2 * hd), 3 * hd);
                }
                Attention.Compute(_q, T, Rows, _cache.K(l), _cache.V(l), _cache.Layout, H, hd, _keyCount, _keyMask, _alibi, scale, _ctx);
                m.Project(_ctx, n, blk.Dense, blk.DenseBias, h, accumulate: true);

                Kernels.LayerNorm(h, n, blk.PostNormW, blk.PostNormB, c.Eps, _norm);
                if (c.ResidualPostLayerNorm) Array.Copy(_norm, h, n * hs);
                m.Project(_norm, n, blk.Up, blk.UpBias, _up);
                Kernels.GeluTanh(_up.AsSpan(0, n * 4 * hs));
                m.Project(_up, n, blk.Down, blk.DownBias, h, accumulate: true);
            }
            _length += T;
            int outT = T - firstLogit, rowsOut = Rows * outT;
            for (int r = 0; r < Rows; r++)
                for (int t = firstLogit; t < T; t++)
                    Kernels.LayerNorm(h.AsSpan((r * T + t) * hs, hs), m._finalNormW, m._finalNormB, c.Eps, _norm.AsSpan((r * outT + t - firstLogit) * hs, hs));
            Pooled.Grow(ref _logits, rowsOut * c.VocabSize);
            fixed (float* px = _norm, py = _logits) Kernels.MatMul(px, rowsOut, m._embed, py);
            return _logits.AsSpan(0, rowsOut * c.VocabSize);
        }

        public void Reorder(ReadOnlySpan<int> sources)
        {
            _cache.Reorder(sources, _length);
            for (int r = 0; r < Rows; r++)
            {
                _mask[sources[r]].CopyTo(_spareMask[r], 0);
                _pos[sources[r]].CopyTo(_sparePos[r], 0);
                _startIds[r] = _startIds[sources[r]];
            }
            for (int r = 0; r < Rows; r++) { (_mask[r], _spareMask[r]) = (_spareMask[r], _mask[r]); (_pos[r], _sparePos[r]) = (_sparePos[r], _pos[r]); }
        }

        public void Dispose() => Pooled.Return(ref _logits);
    }

    /// <summary>
    /// Log-probs of each choice's tokens after the prompt: one sequence prompt ++ choice per choice (left
    /// padded together), scoring the positions that predict the choice tokens.
    /// </summary>
    public float[][][] ScoreTokens(IReadOnlyList<ScoreRequest> requests)
    {
        var result = new float[requests.Count][][];
        for (int q = 0; q < requests.Count; q++)
        {
            var req = requests[q];
            int nc = req.ChoiceIds.Length, P = req.PromptIds.Length;
            result[q] = new float[nc][];
            if (nc == 0) continue;
            var seqs = req.ChoiceIds.Select(ch => (int[])[.. req.PromptIds, .. ch]).ToArray();
            using var s = new Session(this, seqs, 1, 0);
            int N = seqs.Max(x => x.Length);
            // The first scored position over all rows: the last prompt token of the longest padding.
            int first = seqs.Min(x => N - x.Length + P - 1);
            if (first < 0) throw new XmtfException("decoder-only scoring needs a non-empty prompt");
            var logits = s.Forward(s.PaddedPrompts, N, first);
            int outT = N - first;
            for (int c = 0; c < nc; c++)
            {
                int row0 = c * outT + (N - seqs[c].Length + P - 1 - first);
                result[q][c] = Scoring.TokenLogProbs(logits, row0, req.ChoiceIds[c], VocabSize);
            }
        }
        return result;
    }

    /// <summary>The matrices one decode step reads (the bench's bandwidth probe streams them).</summary>
    internal IEnumerable<Weight> StepWeights() => _blocks.SelectMany(b => new[] { b.Qkv, b.Dense, b.Up, b.Down }).Append(_embed);

    public void Dispose()
    {
        foreach (var b in _blocks) { b.Qkv.Dispose(); b.Dense.Dispose(); b.Up.Dispose(); b.Down.Dispose(); }
        _embed.Dispose();
        _checkpoint.Dispose();
    }
}
