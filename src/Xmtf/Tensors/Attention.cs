using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Xmtf.Tensors;

/// <summary>Adds the position biases of (sequence, head, query) to its scores over keys 0, 1, ... (one call per query, not per key).</summary>
public delegate void ScoreBias(int seq, int head, int query, Span<float> scores);

/// <summary>Multi-head attention: queries and outputs in rows of [heads * headDim], keys and values where a <see cref="KvLayout"/> puts them.</summary>
public static unsafe class Attention
{
    /// <summary>
    /// For each sequence r and head h, query i (row r*queriesPerSeq + i of q) attends to keys (and values)
    /// j &lt; keyCount(r, i) of sequence r in <paramref name="kv"/>, skipping keys where keyMask(r)[j] is false
    /// (what adding finfo.min does in fp32). score = scale * q·k + bias. Sequences × heads run in parallel.
    /// </summary>
    public static void Compute(float[] q, int queriesPerSeq, int seqs, float[] k, float[] v, KvLayout kv, int heads, int headDim,
        Func<int, int, int> keyCount, Func<int, bool[]>? keyMask, ScoreBias? bias, float scale, float[] ctx)
    {
        var job = _job ??= new Job();
        (job.Q, job.QueriesPerSeq, job.K, job.V, job.Kv, job.Heads, job.HeadDim, job.KeyCount, job.KeyMask, job.Bias, job.Scale, job.Ctx) =
            (q, queriesPerSeq, k, v, kv, heads, headDim, keyCount, keyMask, bias, scale, ctx);
        try { WorkerPool.For(seqs * heads, Kernels.Threads, job.Body); }
        finally { job.Clear(); }
    }

    [ThreadStatic] static Job? _job;

    /// <summary>One <see cref="Compute"/>'s arguments and its per-(sequence, head) body, one object per calling thread, reused: a decode step allocates nothing.</summary>
    sealed class Job
    {
        public float[] Q = [], K = [], V = [], Ctx = [];
        public int QueriesPerSeq, Heads, HeadDim;
        public KvLayout Kv;
        public Func<int, int, int> KeyCount = (_, _) => 0;
        public Func<int, bool[]>? KeyMask;
        public ScoreBias? Bias;
        public float Scale;
        public readonly Action<int> Body;

        public Job() => Body = Head;

        /// <summary>No references kept to the caller's arrays and delegates.</summary>
        public void Clear() { Q = K = V = Ctx = []; KeyCount = (_, _) => 0; KeyMask = null; Bias = null; Kv = default; }

        void Head(int sh)
        {
            float[] q = Q, k = K, v = V, ctx = Ctx;
            int queriesPerSeq = QueriesPerSeq, heads = Heads, headDim = HeadDim, width = heads * headDim, rowStride = Kv.RowStride;
            var keyCount = KeyCount; var keyMask = KeyMask; var bias = Bias; float scale = Scale;
            var scores = _scores ??= new float[64];
            int r = sh / heads, h = sh % heads, kb = Kv.Start(r) + h * Kv.HeadStride;
            var mask = keyMask?.Invoke(r);
            // Nothing masked (a prompt without padding): the scores take the vector path, not a check per key
            // (a quarter of an encoder's attention).
            if (mask is not null && !mask.AsSpan().Contains(false)) mask = null;
            // Many queries (an encoder, a prompt) share the head's keys: transposed once, each query's scores
            // are FMAs over 16 keys at a time instead of a dot product and a horizontal sum per key.
            int all = 0;
            if (queriesPerSeq >= TransposeMinQueries && Vector512.IsHardwareAccelerated)
                for (int i = 0; i < queriesPerSeq; i++) all = Math.Max(all, keyCount(r, i));
            int stride = (all + 15) & ~15;
            fixed (float* pq = q, pk = k, pv = v, pc = ctx)
            {
                float* keys = pk + kb;
                if (all == 0 && rowStride == headDim && Sse.IsSupported)
                {
                    // Decoding: the head's keys and values are two contiguous streams that the weights' stream
                    // has evicted from every cache. Asking for all their lines up front overlaps the misses.
                    long bytes = (long)keyCount(r, queriesPerSeq - 1) * headDim * sizeof(float);
                    for (long o = 0; o < bytes; o += 64) { Sse.Prefetch0((byte*)keys + o); Sse.Prefetch0((byte*)(pv + kb) + o); }
                }
                float* kt = all > 0 ? Transpose(keys, rowStride, headDim, all, stride) : null;
                // The head's values too, packed unless they are: rows `width` apart (4 KB in mt0-large) share a
                // few L1 sets, so each query read them again from L2.
                float* values = pv + kb;
                int valueStride = rowStride;
                if (all > 0 && rowStride != headDim) { values = Pack(values, rowStride, headDim, all); valueStride = headDim; }
                // With transposed keys, queries go four at a time: their scores and weighted sums share each load
                // of the keys and values, and keep eight FMA chains in flight instead of four.
                Span<int> counts = stackalloc int[Group]; // a group's key counts (keyCount is a delegate)
                for (int i0 = 0; i0 < queriesPerSeq;)
                {
                    int group = kt is not null && queriesPerSeq - i0 >= Group ? Group : 1, most = 0;
                    for (int g = 0; g < group; g++) most = Math.Max(most, counts[g] = keyCount(r, i0 + g));
                    int rowLength = Math.Max(stride, most);
                    if (scores.Length < group * rowLength) _scores = scores = new float[Math.Max(group * rowLength, scores.Length * 2)];
                    fixed (float* ps = scores)
                    {
                        float* q0 = pq + (long)(r * queriesPerSeq + i0) * width + h * headDim;
                        if (group == Group) Scores4(q0, width, kt, headDim, stride, (most + 15) & ~15, ps);
                        else if (kt is not null) Scores(q0, kt, headDim, stride, (most + 15) & ~15, ps);
                        int anyMask = 0;
                        for (int g = 0; g < group; g++)
                        {
                            int i = i0 + g, n = counts[g];
                            float* p = ps + (long)g * stride, outp = pc + (long)(r * queriesPerSeq + i) * width + h * headDim;
                            if (Probabilities(new Span<float>(p, rowLength), n, kt is not null, mask, scale, q0 + (long)g * width, keys, rowStride, headDim, r, h, i, bias))
                                anyMask |= 1 << g;
                            else new Span<float>(outp, headDim).Clear(); // nothing to attend to (left padding): zeros
                            new Span<float>(p + n, most - n).Clear(); // keys past this query's count weigh nothing
                        }
                        if (group == Group && anyMask == (1 << Group) - 1)
                            WeightedSum4(ps, stride, most, values, valueStride, headDim, pc + (long)(r * queriesPerSeq + i0) * width + h * headDim, width);
                        else
                            for (int g = 0; g < group; g++)
                                if ((anyMask & 1 << g) != 0)
                                    WeightedSum(ps + (long)g * stride, counts[g], values, valueStride, headDim, pc + (long)(r * queriesPerSeq + i0 + g) * width + h * headDim);
                    }
                    i0 += group;
                }
            }
        }

        /// <summary>
        /// Query i's scores over its n keys in p (computed already from transposed keys, else here), scaled, masked,
        /// biased and softmaxed in place; false when every key is masked.
        /// </summary>
        static bool Probabilities(Span<float> p, int n, bool computed, bool[]? mask, float scale, float* qi, float* keys, int rowStride, int headDim,
            int r, int h, int i, ScoreBias? bias)
        {
            var s = p[..n];
            bool any = mask is null && n > 0;
            if (mask is null && computed) { if (scale != 1) TensorPrimitives.Multiply(s, scale, s); }
            else
                for (int j = 0; j < n; j++)
                {
                    if (mask is not null && !mask[j]) { s[j] = float.NegativeInfinity; continue; }
                    any = true;
                    s[j] = (computed ? s[j] : Dot(qi, keys + (long)j * rowStride, headDim)) * scale;
                }
            bias?.Invoke(r, h, i, s); // -inf stays -inf
            if (any) Kernels.Softmax(s);
            return any;
        }
    }

    [ThreadStatic] static float[]? _scores, _keysT, _values;

    /// <summary>Queries per sequence from which a head's keys are transposed first.</summary>
    const int TransposeMinQueries = 8;

    /// <summary>Queries that go through <see cref="Scores4"/> and <see cref="WeightedSum4"/> together.</summary>
    const int Group = 4;

    /// <summary>n keys of one head (rows <paramref name="rowStride"/> apart) as [headDim][stride], zero past n.</summary>
    static float* Transpose(float* keys, int rowStride, int headDim, int n, int stride)
    {
        float* kt = Kernels.Aligned(ref _keysT, (long)headDim * stride);
        int j0 = 0;
        if (Avx.IsSupported)
            // 8 keys x 8 dimensions at a time in registers: element by element, the keys' rows (4 KB apart in
            // mt0-large's encoder) were read 64 times each, 1.5% of the encoder.
            for (; j0 + 8 <= n; j0 += 8)
                for (int d = 0; d + 8 <= headDim; d += 8)
                    Kernels.Transpose8x8(keys + (long)j0 * rowStride + d, rowStride, kt + (long)d * stride + j0, stride);
        for (int d = 0; d < headDim; d++)
        {
            float* row = kt + (long)d * stride;
            int from = d < headDim / 8 * 8 ? j0 : 0; // dimensions the 8 x 8 blocks covered, for their first j0 keys
            for (int j = from; j < n; j++) row[j] = keys[(long)j * rowStride + d];
            for (int j = n; j < stride; j++) row[j] = 0;
        }
        return kt;
    }

    /// <summary>n value rows of one head (rows <paramref name="rowStride"/> apart) as [n][headDim].</summary>
    static float* Pack(float* values, int rowStride, int headDim, int n)
    {
        float* packed = Kernels.Aligned(ref _values, (long)n * headDim);
        for (int j = 0; j < n; j++) new ReadOnlySpan<float>(values + (long)j * rowStride, headDim).CopyTo(new Span<float>(packed + (long)j * headDim, headDim));
        return packed;
    }

    /// <summary>scores[0, count) = q · key j, from the transposed keys; count a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Scores(float* q, float* kt, int headDim, int stride, int count, float* scores)
    {
        int j = 0;
        for (; j + 64 <= count; j += 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int d = 0; d < headDim; d++)
            {
                var qd = Vector512.Create(q[d]);
                float* row = kt + (long)d * stride + j;
                a0 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(row), a0);
                a1 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(row + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(row + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(qd, Vector512.Load(row + 48), a3);
            }
            a0.Store(scores + j); a1.Store(scores + j + 16); a2.Store(scores + j + 32); a3.Store(scores + j + 48);
        }
        for (; j < count; j += 16)
        {
            Vector512<float> a0 = default;
            for (int d = 0; d < headDim; d++) a0 = Vector512.FusedMultiplyAdd(Vector512.Create(q[d]), Vector512.Load(kt + (long)d * stride + j), a0);
            a0.Store(scores + j);
        }
    }

    /// <summary>
    /// <see cref="Scores"/> for four queries <paramref name="queryStride"/> floats apart, into four rows of scores
    /// <paramref name="stride"/> apart: each key's score is the same FMA chain over d as there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Scores4(float* q, int queryStride, float* kt, int headDim, int stride, int count, float* scores)
    {
        int j = 0;
        for (; j + 32 <= count; j += 32) Tile4x32(q, queryStride, headDim, kt + j, stride, scores + j, stride);
        if (j < count)
            for (int g = 0; g < Group; g++) Scores(q + (long)g * queryStride, kt + j, headDim, stride, count - j, scores + (long)g * stride + j);
    }

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

    /// <summary>
    /// output = Σ_j p[j] * value row j (rows <paramref name="rowStride"/> apart), summed in j order; keys with p = 0
    /// (masked) are skipped. 64 dimensions at a time stay in registers: accumulating into memory made each
    /// key wait on the previous key's store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum(float* p, int n, float* values, int rowStride, int headDim, float* output)
    {
        int d = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; d + 64 <= headDim; d += 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float* v = values + d;
                for (int j = 0; j < n; j++, v += rowStride)
                {
                    if (p[j] == 0) continue;
                    var pj = Vector512.Create(p[j]);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), pj, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 16), pj, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 32), pj, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 48), pj, a3);
                }
                a0.Store(output + d); a1.Store(output + d + 16); a2.Store(output + d + 32); a3.Store(output + d + 48);
            }
            for (; d + 16 <= headDim; d += 16)
            {
                Vector512<float> a0 = default;
                float* v = values + d;
                for (int j = 0; j < n; j++, v += rowStride)
                    if (p[j] != 0) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), Vector512.Create(p[j]), a0);
                a0.Store(output + d);
            }
        }
        for (; d < headDim; d++)
        {
            float a = 0;
            for (int j = 0; j < n; j++)
                if (p[j] != 0) a = MathF.FusedMultiplyAdd(values[(long)j * rowStride + d], p[j], a);
            output[d] = a;
        }
    }

    /// <summary>
    /// <see cref="WeightedSum"/> for four queries at once: probabilities in four rows <paramref name="pStride"/> apart
    /// over n keys, outputs <paramref name="outStride"/> apart. Each output element is the same FMA chain in key order
    /// as there; keys a query skips there (p = 0) add 0 · v here, which changes nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum4(float* p, int pStride, int n, float* values, int rowStride, int headDim, float* output, int outStride)
    {
        int d = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; d + 32 <= headDim; d += 32) Tile4x32(p, pStride, n, values + d, rowStride, output + d, outStride);
        // The rest one query at a time, in the same order.
        if (d < headDim)
            for (int g = 0; g < Group; g++)
                WeightedSum(p + (long)g * pStride, n, values + d, rowStride, headDim - d, output + (long)g * outStride + d);
    }

    /// <summary>
    /// c[g, 0..32) = Σ_{s &lt; t} a[g, s] · b[s, 0..32) for g &lt; 4 (rows of a <paramref name="aStride"/> apart, of b
    /// <paramref name="bStride"/>, of c <paramref name="cStride"/>), each element one FMA chain in s order: eight
    /// accumulators, each load of b shared by four rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x32(float* a, int aStride, int t, float* b, int bStride, float* c, int cStride)
    {
        float* a1 = a + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int s = 0; s < t; s++, b += bStride)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[s]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[s]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[s]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[s]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
        }
        float* r1 = c + cStride, r2 = r1 + cStride, r3 = r2 + cStride;
        c00.Store(c); c01.Store(c + 16); c10.Store(r1); c11.Store(r1 + 16);
        c20.Store(r2); c21.Store(r2 + 16); c30.Store(r3); c31.Store(r3 + 16);
    }
}
