using System.Numerics.Tensors;

namespace Xmtf.Tensors;

/// <summary>Adds a position bias to one attention score: (sequence, head, query, key) → bias.</summary>
public delegate float ScoreBias(int seq, int head, int query, int key);

/// <summary>Multi-head attention over rows of [heads * headDim] (queries, cached keys and values).</summary>
public static class Attention
{
    /// <summary>
    /// For each sequence r and head h, query i (row r*queriesPerSeq + i of q) attends to key rows
    /// keyBase(r) + j, j &lt; keyCount(r, i), skipping keys where keyMask(r, j) is false (what adding
    /// finfo.min does in fp32). score = scale * q·k + bias. Sequences × heads run in parallel.
    /// </summary>
    public static void Compute(float[] q, int queriesPerSeq, int seqs, float[] k, float[] v, int heads, int headDim,
        Func<int, int> keyBase, Func<int, int, int> keyCount, Func<int, int, bool>? keyMask, ScoreBias? bias, float scale, float[] ctx)
    {
        int width = heads * headDim;
        WorkerPool.For(seqs * heads, Kernels.Threads, sh =>
        {
            var scores = _scores ??= new float[64];
            int r = sh / heads, h = sh % heads, kb = keyBase(r);
            for (int i = 0; i < queriesPerSeq; i++)
            {
                int n = keyCount(r, i);
                if (scores.Length < n) _scores = scores = new float[Math.Max(n, scores.Length * 2)];
                var qi = q.AsSpan((r * queriesPerSeq + i) * width + h * headDim, headDim);
                bool any = false;
                for (int j = 0; j < n; j++)
                {
                    if (keyMask is not null && !keyMask(r, j)) { scores[j] = float.NegativeInfinity; continue; }
                    any = true;
                    scores[j] = TensorPrimitives.Dot(qi, k.AsSpan((kb + j) * width + h * headDim, headDim)) * scale + (bias?.Invoke(r, h, i, j) ?? 0f);
                }
                var outp = ctx.AsSpan((r * queriesPerSeq + i) * width + h * headDim, headDim);
                outp.Clear();
                if (!any) continue; // a query with nothing to attend to (left padding) yields zeros
                Kernels.Softmax(scores.AsSpan(0, n));
                for (int j = 0; j < n; j++)
                    if (scores[j] != 0) TensorPrimitives.MultiplyAdd(v.AsSpan((kb + j) * width + h * headDim, headDim), scores[j], outp, outp);
            }
        });
    }

    [ThreadStatic] static float[]? _scores;
}
