using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Xmtf.Tensors;

/// <summary>Adds a position bias to one attention score: (sequence, head, query, key) → bias.</summary>
public delegate float ScoreBias(int seq, int head, int query, int key);

/// <summary>Multi-head attention over rows of [heads * headDim] (queries, cached keys and values).</summary>
public static unsafe class Attention
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
            fixed (float* pq = q, pk = k, pv = v, pc = ctx)
                for (int i = 0; i < queriesPerSeq; i++)
                {
                    int n = keyCount(r, i);
                    if (scores.Length < n) _scores = scores = new float[Math.Max(n, scores.Length * 2)];
                    float* qi = pq + (long)(r * queriesPerSeq + i) * width + h * headDim;
                    float* keys = pk + (long)kb * width + h * headDim;
                    bool any = false;
                    for (int j = 0; j < n; j++)
                    {
                        if (keyMask is not null && !keyMask(r, j)) { scores[j] = float.NegativeInfinity; continue; }
                        any = true;
                        scores[j] = Dot(qi, keys + (long)j * width, headDim) * scale + (bias?.Invoke(r, h, i, j) ?? 0f);
                    }
                    float* outp = pc + (long)(r * queriesPerSeq + i) * width + h * headDim;
                    new Span<float>(outp, headDim).Clear();
                    if (!any) continue; // a query with nothing to attend to (left padding) yields zeros
                    Kernels.Softmax(scores.AsSpan(0, n));
                    float* values = pv + (long)kb * width + h * headDim;
                    for (int j = 0; j < n; j++)
                        if (scores[j] != 0) Axpy(outp, values + (long)j * width, scores[j], headDim);
                }
        });
    }

    [ThreadStatic] static float[]? _scores;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            s = Kernels.Sum(acc);
        }
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y += alpha * x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy(float* y, float* x, float alpha, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(alpha);
            for (; i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), va, Vector512.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] += alpha * x[i];
    }
}
