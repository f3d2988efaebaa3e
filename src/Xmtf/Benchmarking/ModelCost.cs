using Xmtf.Generation;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;
using Xmtf.Tensors;

namespace Xmtf.Benchmarking;

/// <summary>
/// What a model costs, from its config and the weight type in use: the bytes of its weight matrices, the
/// weight bytes one decode step reads, and the FLOPs of the prompt pass. Norm and bias vectors (under 0.1%)
/// and activations (KV caches, cross-attention keys/values) are not counted.
/// </summary>
/// <param name="WeightBytes">All weight matrices as kept in memory.</param>
/// <param name="BytesPerToken">
/// Weight bytes one decode step streams: the decoder's matrices and the lm_head (a step is one token for
/// every row of the batch, so rows share these bytes).
/// </param>
/// <param name="PromptFlops">
/// FLOPs of the prompt pass (matrix products and attention): mT5's encoder stack; BLOOM's prompt through every
/// layer plus the lm_head of its last position.
/// </param>
public sealed record ModelCost(long WeightBytes, long BytesPerToken, double PromptFlops)
{
    /// <summary>The cost of <paramref name="model"/> loaded as <paramref name="dtype"/>, for prompts of <paramref name="batch"/> x <paramref name="tokens"/>.</summary>
    public static ModelCost Of(IGenerativeModel model, WeightType dtype, int batch, int tokens) => model switch
    {
        MT5Model t5 => MT5(t5.Config, dtype, batch, tokens),
        BloomModel bloom => Bloom(bloom.Config, dtype, batch, tokens),
        _ => throw new XmtfException($"no cost model for {model.GetType().Name}"),
    };

    /// <summary>Bytes of a [rows, cols] matrix as <see cref="Weight"/> keeps it (int8: plus its lines of scales).</summary>
    public static long MatrixBytes(long rows, long cols, WeightType type)
    {
        if (type == WeightType.I8 && cols % Weight.GroupSize != 0) type = WeightType.F32; // Weight.FromF32 keeps such shapes exact
        return rows * Weight.RowBytesOf((int)cols, type);
    }

    static ModelCost MT5(T5Config c, WeightType t, int batch, int tokens)
    {
        long d = c.DModel, inner = c.NumHeads * c.DKv, ff = c.DFf, v = c.VocabSize, n = (long)batch * tokens;
        // MT5Model keeps the FFN output projection (wo) in fp32 when the rest is int8: T5 overflows without it.
        var woType = t == WeightType.I8 ? WeightType.F32 : t;
        long qkv = 3 * MatrixBytes(inner, d, t), o = MatrixBytes(d, inner, t);
        long ffn = (c.IsGated ? 2 : 1) * MatrixBytes(ff, d, t) + MatrixBytes(d, ff, woType);
        long embedding = MatrixBytes(v, d, t);
        long lmHead = c.TieWordEmbeddings ? 0 : embedding;
        long encoderLayer = qkv + o + ffn;
        long decoderLayer = 2 * (qkv + o) + ffn; // self and cross attention have the same shapes
        // A step reads every decoder matrix except the cross-attention k and v (applied once, at the start).
        long stepLayer = decoderLayer - 2 * MatrixBytes(inner, d, t);
        double encoderLayerFlops = 2.0 * n * d * inner * 4 + 4.0 * batch * tokens * tokens * inner + 2.0 * n * d * ff * (c.IsGated ? 3 : 2);
        return new ModelCost(
            embedding + lmHead + c.NumLayers * encoderLayer + c.NumDecoderLayers * decoderLayer,
            c.NumDecoderLayers * stepLayer + (c.TieWordEmbeddings ? embedding : lmHead),
            c.NumLayers * encoderLayerFlops);
    }

    static ModelCost Bloom(BloomConfig c, WeightType t, int batch, int tokens)
    {
        long h = c.HiddenSize, v = c.VocabSize, n = (long)batch * tokens;
        long layer = MatrixBytes(3 * h, h, t) + MatrixBytes(h, h, t) + MatrixBytes(4 * h, h, t) + MatrixBytes(h, 4 * h, t);
        long embedding = MatrixBytes(v, h, t); // also the lm_head (tied)
        double layerFlops = 2.0 * n * 12 * h * h + 4.0 * batch * h * tokens * (tokens + 1) / 2; // causal attention
        return new ModelCost(embedding + c.NumLayers * layer, c.NumLayers * layer + embedding,
            c.NumLayers * layerFlops + 2.0 * batch * h * v);
    }
}
