using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Xmtf.Tensors;

/// <summary>
/// The compute kernels. Activations are fp32 row-major; weights are <see cref="Weight"/> matrices in any
/// <see cref="WeightType"/>. Matrix products split the weight's rows across threads, so each weight byte is
/// read once per call whatever the batch size (the decode limit is memory bandwidth).
/// </summary>
public static unsafe class Kernels
{
    /// <summary>Worker threads for the matrix kernels (default: all cores).</summary>
    public static int Threads { get; set; } = Environment.ProcessorCount;

    // Threads take the weight's rows in whole blocks of this many (the GEMM tile height).
    const int RowBlock = TileRows;
    // GEMM register tile: 8 weight rows x 32 input rows, 16 accumulators of 16 lanes.
    const int TileRows = 8, TileCols = 32;
    // Fewer input rows than this stream the weights (decoding a batch); more are compute bound.
    const int GemmMinRows = 16;

    static bool UsesTiles(int n) => n >= GemmMinRows && Vector512.IsHardwareAccelerated;

    /// <summary>y[n, W.Rows] (+)= x[n, W.Cols] · Wᵀ.</summary>
    public static void MatMul(float* x, int n, Weight w, float* y, bool accumulate = false)
    {
        nint py = (nint)y;
        MatMul(x, n, new ReadOnlySpan<Weight>(in w), new ReadOnlySpan<nint>(in py), accumulate); // spans over the arguments: no array per call
    }

    /// <summary>
    /// Several products of one input, y_i[n, W_i.Rows] (+)= x · W_iᵀ (q, k and v; gate and up projections), in
    /// one parallel pass: x is prepared once and the threads share one range of all the weights' rows.
    /// The weights must have the same width and type; y_i are float pointers.
    /// </summary>
    public static void MatMul(float* x, int n, ReadOnlySpan<Weight> ws, ReadOnlySpan<nint> ys, bool accumulate = false)
    {
        if (ws.Length != ys.Length) throw new ArgumentException("one output per weight");
        int k = ws[0].Cols;
        foreach (var w in ws)
            if (w.Cols != k || w.Type != ws[0].Type) throw new ArgumentException("the weights of one MatMul must have the same width and type");
        float* prep = null;
        var type = ws[0].Type;
        int shift = 0;
        if (RowByRow(n))
        {
            shift = Shift(ws[0]);
            int stride = PreparedStride(type, k, shift);
            prep = Aligned(ref _prep, (long)n * stride);
            for (int i = 0; i < n; i++) PrepareRow(type, x + (long)i * k, prep + (long)i * stride, k, shift);
        }
        else if (UsesTiles(n))
        {
            prep = Aligned(ref _prep, (n + TileCols - 1) / TileCols * TileCols * k);
            TransposeTiles(x, n, k, prep);
        }
        (_job ??= new MatMulJob()).Run(x, prep is null ? x : prep, shift, n, ws, ys, accumulate);
    }

    [ThreadStatic] static float[]? _prep, _scratch;

    /// <summary>
    /// A per-thread buffer of at least <paramref name="length"/> floats starting on a 64-byte boundary (a
    /// vector load that straddles two cache lines costs two: it made the bf16 GEMV 30% slower).
    /// Pinned, so the pointer stays valid; grown, never shrunk.
    /// </summary>
    internal static float* Aligned(ref float[]? b, long length)
    {
        if (b is null || b.Length < length + 16) b = GC.AllocateUninitializedArray<float>(checked((int)length + 16), pinned: true);
        return (float*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(b)) + 63) & ~(nint)63);
    }

    /// <summary>
    /// Whether the product runs the row kernels (<see cref="Rows"/>), each input row prepared for its kernel
    /// (<see cref="PrepareRow"/>): one row (decoding) and the few rows (under 16) of a decoding batch or of beam search,
    /// in every format. Each weight row is read, and widened, once per 4 input rows, and each input row's sums run in
    /// the single-row order, so a row decodes to the same logits alone or in a batch. A 250k x 512 lm_head on 2
    /// threads, ms for 2, 4 and 8 rows, this way / the code it replaced (4x4 register tiles for fp32 and bf16, the
    /// single-row kernel once per input row for int8), alternated in the same minutes: fp32 9.0-9.4 / 12.2, 8.7-9.0 /
    /// 14.1, 12.8-13.4 / 23.5-24.9; bf16 5.2-5.4 / 9.1-12.4, 6.1-6.3 / 12.4-16.2, 11.7-12.2 / 19.6-20.8; int8 3.5 / 5.0,
    /// 5.1-5.2 / 9.2-9.5, 9.7-10.5 / 18.1-18.9 (one row: fp32 about 9, bf16 4.8-5.0, int8 2.5-2.7). 16 rows or more
    /// are compute bound: the GEMM.
    /// </summary>
    static bool RowByRow(int n) => n < GemmMinRows;

    /// <summary>Floats from one prepared input row to the next (<see cref="PrepareRow"/>), whole cache lines.</summary>
    static int PreparedStride(WeightType type, int k, int shift) => type switch
    {
        WeightType.I8 => 16 + (k / 2 + 15) / 16 * 16,
        WeightType.BF16 when SplitsX(k) => (shift + k + 64 + 15) & ~15,
        _ => (shift + k + 63) & ~63,
    };

    /// <summary>One input row x[k] at dst as the single-row kernel for <paramref name="type"/> reads it.</summary>
    static void PrepareRow(WeightType type, float* x, float* dst, int k, int shift)
    {
        if (type == WeightType.I8) QuantizeX(x, dst, k);
        // bf16 pairs read as one uint32 widen with a shift (even element) and a mask (odd element) when x is stored
        // evens-then-odds per 32: two ops per 16 weights instead of four. The blocks of 32 start at the rows'
        // 64-byte boundary, `shift` elements before each row.
        else if (type == WeightType.BF16 && SplitsX(k)) SplitEvenOdd(x, dst, k, shift);
        else
        {
            // fp32 (and bf16 without Vector512): in order, zeros around, at the weight rows' offset from a 64-byte
            // boundary (see Shift), so the kernels read x and w in aligned vectors that start together.
            int span = PreparedStride(type, k, shift);
            new Span<float>(dst, shift).Clear();
            new ReadOnlySpan<float>(x, k).CopyTo(new Span<float>(dst + shift, k));
            new Span<float>(dst + shift + k, span - shift - k).Clear();
        }
    }

    /// <summary>
    /// x for the int8 GEMV as int16 with one scale for the whole row, max|x|/32767 (15 bits: finer than q8_0's 7 bits
    /// per 32, and the dot products stay in integers until each group's scale): the scale in the first float, the
    /// values from the 64th byte on. A row holding inf or NaN gets a NaN scale, so its products come out NaN, as in fp32.
    /// </summary>
    static void QuantizeX(float* x, float* p, int k)
    {
        short* q = (short*)(p + 16);
        var xs = new ReadOnlySpan<float>(x, k);
        float max = TensorPrimitives.MaxMagnitude(xs) is var m && float.IsFinite(m) ? MathF.Abs(m) : float.NaN;
        float inv = max is 0 or float.NaN ? 0 : 32767f / max;
        p[0] = max / 32767f;
        int i = 0;
        if (Avx512F.IsSupported)
            for (; i + 16 <= k; i += 16) // rounds to nearest even, as MathF.Round
                Avx512F.ConvertToVector256Int16(Avx512F.ConvertToVector512Int32(Vector512.Load(x + i) * inv)).Store(q + i);
        for (; i < k; i++) q[i] = (short)MathF.Round(x[i] * inv);
    }

    /// <summary>Whether a bf16 GEMV takes x split evens-then-odds (<see cref="SplitEvenOdd"/>): with Vector512, rows of two blocks or more.</summary>
    static bool SplitsX(int k) => Vector512.IsHardwareAccelerated && k >= 64;

    /// <summary>
    /// Number of 32-element blocks a split bf16 row is read in: from its 64-byte boundary through its end
    /// when rows are whole cache lines (the last block's far lanes masked), else its whole blocks (the rest scalar).
    /// </summary>
    static int SplitBlocks(int k, int shift) => shift == 0 ? k / 32 : (shift + k + 31) / 32;

    /// <summary>
    /// x in blocks of 32 that line up with the weight rows' blocks (element -shift first): each block's
    /// even elements, then its odd ones; zero outside [0, k), one block past the end included. Elements past
    /// the last whole block of rows that are not whole blocks stay in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SplitEvenOdd(float* x, float* dst, int k, int shift)
    {
        int blocks = SplitBlocks(k, shift);
        var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odds = evens + Vector512<int>.One;
        for (int b = 0; b < blocks; b++)
        {
            int e0 = 32 * b - shift;
            if (Avx512F.IsSupported && e0 >= 0 && e0 + 32 <= k)
            {
                // A block inside x: two loads, two two-source permutes (this runs once per matrix, on the caller alone).
                var lo = Vector512.Load(x + e0);
                var hi = Vector512.Load(x + e0 + 16);
                Avx512F.PermuteVar16x32x2(lo, evens, hi).Store(dst + 32 * b);
                Avx512F.PermuteVar16x32x2(lo, odds, hi).Store(dst + 32 * b + 16);
                continue;
            }
            for (int t = 0; t < 16; t++)
            {
                int e = 32 * b + 2 * t - shift;
                dst[32 * b + t] = (uint)e < (uint)k ? x[e] : 0;
                dst[32 * b + 16 + t] = (uint)(e + 1) < (uint)k ? x[e + 1] : 0;
            }
        }
        for (int e = 32 * blocks - shift; e < k; e++) dst[e + shift] = x[e];
        // Rows of whole blocks may be read one block further, into the next row (see Bf16Row): zeros there.
        if (shift != 0 || k % 32 == 0) new Span<float>(dst + 32 * blocks, 32).Clear();
    }

    /// <summary>
    /// x[n, k] into tiles of 32 rows, each stored column by column ([tile][k][32], zero rows past n), so the
    /// GEMM loads one tile's column as two vectors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeTiles(float* x, int n, int k, float* d)
    {
        nint px = (nint)x, pd = (nint)d;
        // One tile per work item: a long prompt's transposition is spread over the threads.
        WorkerPool.For((n + TileCols - 1) / TileCols, Threads, t =>
        {
            float* dt = (float*)pd + (long)t * k * TileCols;
            int rows = Math.Min(TileCols, n - t * TileCols);
            float* xt = (float*)px + (long)t * TileCols * k;
            int c = 0;
            if (Avx.IsSupported && rows == TileCols)
                // 8 x 8 blocks transposed in registers: a scalar copy per element took 3-4% of the encoder.
                for (; c + 8 <= k; c += 8)
                    for (int j = 0; j < TileCols; j += 8)
                        Transpose8x8(xt + (long)j * k + c, k, dt + (long)c * TileCols + j, TileCols);
            // Column by column: the writes run contiguously, the reads advance 32 row streams together.
            for (; c < k; c++)
            {
                float* col = dt + (long)c * TileCols;
                int j = 0;
                for (; j < rows; j++) col[j] = xt[(long)j * k + c];
                for (; j < TileCols; j++) col[j] = 0;
            }
        });
    }

    /// <summary>dst[i * dstStride + j] (+)= src[j * srcStride + i] for i, j &lt; 8, in registers (24 shuffles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, int srcStride, float* dst, int dstStride, bool accumulate = false)
    {
        var t0 = Avx.UnpackLow(Vector256.Load(src), Vector256.Load(src + srcStride));
        var t1 = Avx.UnpackHigh(Vector256.Load(src), Vector256.Load(src + srcStride));
        var t2 = Avx.UnpackLow(Vector256.Load(src + 2 * srcStride), Vector256.Load(src + 3 * srcStride));
        var t3 = Avx.UnpackHigh(Vector256.Load(src + 2 * srcStride), Vector256.Load(src + 3 * srcStride));
        var t4 = Avx.UnpackLow(Vector256.Load(src + 4 * srcStride), Vector256.Load(src + 5 * srcStride));
        var t5 = Avx.UnpackHigh(Vector256.Load(src + 4 * srcStride), Vector256.Load(src + 5 * srcStride));
        var t6 = Avx.UnpackLow(Vector256.Load(src + 6 * srcStride), Vector256.Load(src + 7 * srcStride));
        var t7 = Avx.UnpackHigh(Vector256.Load(src + 6 * srcStride), Vector256.Load(src + 7 * srcStride));
        // s_i: elements i (low 128 bits) and i + 4 (high) of rows 0-3 (s0-s3) and of rows 4-7 (s4-s7).
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Put(Avx.Permute2x128(s0, s4, 0x20), dst, accumulate); Put(Avx.Permute2x128(s1, s5, 0x20), dst + dstStride, accumulate);
        Put(Avx.Permute2x128(s2, s6, 0x20), dst + 2 * dstStride, accumulate); Put(Avx.Permute2x128(s3, s7, 0x20), dst + 3 * dstStride, accumulate);
        Put(Avx.Permute2x128(s0, s4, 0x31), dst + 4 * dstStride, accumulate); Put(Avx.Permute2x128(s1, s5, 0x31), dst + 5 * dstStride, accumulate);
        Put(Avx.Permute2x128(s2, s6, 0x31), dst + 6 * dstStride, accumulate); Put(Avx.Permute2x128(s3, s7, 0x31), dst + 7 * dstStride, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(Vector256<float> v, float* dst, bool accumulate) => (accumulate ? v + Vector256.Load(dst) : v).Store(dst);

    [ThreadStatic] static MatMulJob? _job;

    /// <summary>
    /// One <see cref="MatMul(float*, int, ReadOnlySpan{Weight}, ReadOnlySpan{nint}, bool)"/>'s parallel pass, one
    /// object per calling thread, reused, so that a decode step allocates nothing.
    /// </summary>
    sealed class MatMulJob
    {
        Weight[] _ws = new Weight[3];
        nint[] _ys = new nint[3];
        int _count, _blocks, _chunks, _shift, _n;
        float* _x, _xp;
        bool _accumulate;
        readonly Action<int> _body;

        const long GemvChunkBytes = 128 << 10;

        public MatMulJob() => _body = Chunk;

        /// <param name="xp">x as the kernel wants it (see MatMul); else x</param>
        public void Run(float* x, float* xp, int shift, int n, ReadOnlySpan<Weight> ws, ReadOnlySpan<nint> ys, bool accumulate)
        {
            if (_ws.Length < ws.Length) { _ws = new Weight[ws.Length]; _ys = new nint[ws.Length]; }
            ws.CopyTo(_ws); ys.CopyTo(_ys);
            _count = ws.Length; _x = x; _xp = xp; _shift = shift; _n = n; _accumulate = accumulate;
            // The weights' rows in blocks, numbered across all weights; a chunk is a run of consecutive blocks.
            int blocks = 0;
            long work = 0, bytes = 0;
            foreach (var w in ws)
            {
                blocks += (w.Rows + RowBlock - 1) / RowBlock;
                work += (long)w.Rows * w.Cols * Math.Max(n, 1);
                bytes += w.ByteCount;
            }
            // Enough chunks for load balance. A thread claims runs of chunks, not one at a time (WorkerPool.Take),
            // so a streaming pass can afford one per 128 KB of weights: the threads then finish within microseconds.
            int threads = Math.Max(1, Threads);
            long wanted = UsesTiles(n) ? threads * 32 : Math.Max(threads * 8, bytes / GemvChunkBytes);
            int chunks = (int)Math.Min(blocks, wanted);
            if (chunks <= 1 || Threads <= 1 || work < 32_768) chunks = 1;
            _blocks = blocks; _chunks = chunks;
            WorkerPool.For(chunks, Threads, _body);
            Array.Clear(_ws); // no reference kept to the weights
        }

        void Chunk(int c)
        {
            int b0 = (int)((long)_blocks * c / _chunks), b1 = (int)((long)_blocks * (c + 1) / _chunks), first = 0;
            for (int i = 0; i < _count && first < b1; i++)
            {
                var w = _ws[i];
                int count = (w.Rows + RowBlock - 1) / RowBlock;
                int lo = Math.Max(b0, first) - first, hi = Math.Min(b1, first + count) - first;
                if (lo < hi) MatMulRows(_x, _xp, _shift, _n, w, (float*)_ys[i], lo * RowBlock, Math.Min(w.Rows, hi * RowBlock), _accumulate);
                first += count;
            }
        }
    }

    /// <summary>
    /// Output columns [r0, r1) for all n input rows. Up to 15 input rows (decoding, a batch, beams) stream each
    /// weight row once, widening bf16/int8 in registers (see <see cref="RowByRow"/>). More rows (encoder, prompt)
    /// are compute bound: see <see cref="GemmTiles"/>; without Vector512 each input row takes 4 weight rows at a
    /// time (<see cref="Dot4"/>; bf16/int8 widened 4 weight rows at a time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MatMulRows(float* x, float* xp, int shift, int n, Weight w, float* y, int r0, int r1, bool accumulate)
    {
        int k = w.Cols, m = w.Rows;
        if (RowByRow(n))
        {
            int stride = PreparedStride(w.Type, k, shift), rows = r1 - r0;
            byte* row = w.Row(r0);
            switch (w.Type)
            {
                case WeightType.F32: Rows(new F32Row(shift, (float*)w.Data, k), xp, stride, n, row, w.RowBytes, y + r0, m, rows, accumulate); break;
                case WeightType.BF16: Rows(new Bf16Row(shift, w), xp, stride, n, row, w.RowBytes, y + r0, m, rows, accumulate); break;
                default: Rows(new Q8Row(k), xp, stride, n, row, w.RowBytes, y + r0, m, rows, accumulate); break;
            }
            return;
        }
        if (UsesTiles(n))
        {
            GemmTiles(xp, n, w, y, r0, r1, accumulate);
            return;
        }
        float* s = w.Type == WeightType.F32 ? null : Aligned(ref _scratch, 4 * k);
        // Left to the hardware prefetcher the rows streamed at a third to a half of the bandwidth: every line of the
        // 4 rows StreamAhead (or 4 rows, if more) further on is asked for as this block starts.
        long block = 4 * w.RowBytes, ahead = Math.Max(StreamAhead, block);
        for (int r = r0; r < r1; r += 4)
        {
            int nr = Math.Min(4, r1 - r);
            if (Sse.IsSupported)
                for (byte* p = w.Row(r) + ahead, end = p + block; p < end; p += 64) Sse.PrefetchNonTemporal(p);
            float* rows = (float*)w.Data + (long)r * k;
            if (w.Type != WeightType.F32) { Widen(w, r, nr, s); rows = s; }
            for (int i = 0; i < n; i++)
            {
                float* xi = x + (long)i * k;
                float* yi = y + (long)i * m + r;
                if (nr == 4)
                {
                    Dot4(xi, rows, k, out var d0, out var d1, out var d2, out var d3);
                    Put(yi, d0, accumulate); Put(yi + 1, d1, accumulate); Put(yi + 2, d2, accumulate); Put(yi + 3, d3, accumulate);
                }
                else
                    for (int j = 0; j < nr; j++) Put(yi + j, Dot(xi, rows + (long)j * k, k), accumulate);
            }
        }
    }

    /// <summary>
    /// Output columns [r0, r1) for n ≥ 16 input rows, in 8 x 32 register tiles: each step loads one column
    /// of a 32-row input tile (two vectors, from <see cref="TransposeTiles"/>) and broadcasts one element of
    /// each of 8 weight rows, 16 FMAs for 10 loads. bf16/int8 rows are widened to fp32 once per 8-row block.
    /// Input tiles go in passes small enough to stay in L2 while the weight block stays in L1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemmTiles(float* xt, int n, Weight w, float* y, int r0, int r1, bool accumulate)
    {
        int k = w.Cols, m = w.Rows, tiles = (n + TileCols - 1) / TileCols;
        int pass = Math.Max(1, 768 * 1024 / (k * TileCols * sizeof(float)));
        float* tile = stackalloc float[TileRows * TileCols];
        long rowBytes = w.RowBytes;
        float* s = Aligned(ref _scratch, TileRows * k);
        for (int t0 = 0; t0 < tiles; t0 += pass)
            for (int r = r0; r < r1; r += TileRows)
            {
                int nr = Math.Min(TileRows, r1 - r);
                float* rows = (float*)w.Data + (long)r * k;
                if (w.Type != WeightType.F32 || nr < TileRows)
                {
                    Widen(w, r, nr, s);
                    new Span<float>(s + nr * k, (TileRows - nr) * k).Clear();
                    rows = s;
                }
                // While the first input tile runs over this block, the next block's weights come into L2.
                byte* next = r + TileRows < m ? (byte*)w.Data + (r + TileRows) * rowBytes : null;
                int nextLines = next is null ? 0 : (int)(Math.Min(TileRows, m - r - TileRows) * rowBytes / 64);
                for (int t = t0; t < Math.Min(tiles, t0 + pass); t++)
                {
                    Tile8x32(rows, k, xt + (long)t * k * TileCols, tile, next, t == t0 ? nextLines : 0);
                    int i0 = t * TileCols, count = Math.Min(TileCols, n - i0), i = 0;
                    if (nr == TileRows && Avx.IsSupported)
                        // Eight output rows' 8 values at a time, transposed in registers (a gather per output row took 4% of the encoder).
                        for (; i + 8 <= count; i += 8) Transpose8x8(tile + i, TileCols, y + (long)(i0 + i) * m + r, m, accumulate);
                    for (; i < count; i++)
                    {
                        float* yi = y + (long)(i0 + i) * m + r;
                        for (int j = 0; j < nr; j++) yi[j] = accumulate ? yi[j] + tile[j * TileCols + i] : tile[j * TileCols + i];
                    }
                }
            }
    }

    /// <summary>
    /// tile[8, 32] = w[8 rows, k] · xt[k, 32] (one input tile, column by column); every other step also
    /// prefetches one of the <paramref name="nextLines"/> cache lines at <paramref name="next"/> into L2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile8x32(float* w, int k, float* xt, float* tile, byte* next, int nextLines)
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k, w4 = w3 + k, w5 = w4 + k, w6 = w5 + k, w7 = w6 + k;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int i = 0; i < k; i++, xt += TileCols)
        {
            if ((i & 1) == 0 && (i >> 1) < nextLines && Sse.IsSupported) Sse.Prefetch1(next + (long)(i >> 1) * 64);
            var b0 = Vector512.Load(xt); var b1 = Vector512.Load(xt + 16);
            var a = Vector512.Create(w[i]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(w1[i]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(w2[i]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(w3[i]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(w4[i]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(w5[i]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(w6[i]); c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(w7[i]); c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
        }
        c00.Store(tile); c01.Store(tile + 16); c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80); c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144); c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208); c70.Store(tile + 224); c71.Store(tile + 240);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Bf16Even(Vector512<uint> v) => Vector512.ShiftLeft(v, 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Bf16Odd(Vector512<uint> v) => (v & Vector512.Create(0xFFFF0000u)).AsSingle();

    /// <summary>
    /// How many elements each row of an fp32 or bf16 GEMV weight starts past a 64-byte boundary. Tensors used in place
    /// from a checkpoint start wherever the file puts them (safetensors aligns to 8 bytes), and a vector
    /// load that straddles two cache lines costs two. When every row has the same offset (rows a whole
    /// number of cache lines long), x is placed at the same offset so both are read in aligned vectors;
    /// else (0) the kernels read from the row start.
    /// </summary>
    static int Shift(Weight w)
    {
        int elem = w.ElementBytes;
        nint offset = (nint)w.Data & 63;
        if (w.Type == WeightType.I8 || offset % elem != 0 || w.Cols * elem % 64 != 0) return 0; // int8 is ours, aligned
        return (int)offset / elem;
    }

    /// <summary>A weight row's dot products with input rows prepared for its kernel (<see cref="PrepareRow"/>).</summary>
    interface IRowDot
    {
        /// <summary>The row's dot product with the input row at x.</summary>
        float Dot(byte* row, float* x);

        /// <summary>
        /// y[i * ystride] (+)= the row's dot product with each of <paramref name="g"/> (2 to 4, a constant at the
        /// call site, so that the unused rows' code folds away) input rows <paramref name="stride"/> floats apart:
        /// the weights are read, and widened, once for all of them, and each sum runs in <see cref="Dot"/>'s order,
        /// so that every input row gets exactly what it gets alone.
        /// </summary>
        void Dots(byte* row, float* x, long stride, int g, float* y, long ystride, bool accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* y, float d, bool accumulate) => *y = accumulate ? *y + d : d;

    /// <summary>Each of g input rows against the row alone: for rows and machines that the shared loops do not cover.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void DotsOneByOne<T>(T kernel, byte* row, float* x, long stride, int g, float* y, long ystride, bool accumulate) where T : struct, IRowDot
    {
        for (int i = 0; i < g; i++) Put(y + i * ystride, kernel.Dot(row, x + i * stride), accumulate);
    }

    /// <summary>
    /// How far ahead of its loads an fp32 or bf16 GEMV asks for the weights, with prefetchnta, every cache line of
    /// the stream (a line left to the hardware prefetcher stalls it: fp32 rows of 2 KB whose first and last lines
    /// went unasked decoded 1.4x slower). On this AMD machine a non-temporal line skips the L2 and L3 on its way in
    /// and out (the L3 is a victim cache, so each streamed line used to be written back into it). Paired against
    /// the t0 prefetch of short rows and none on long rows: decode steps of mt0-small bf16 -7%, mt0-base bf16 -7
    /// to -10%, mt0-large bf16 -5%, mt0-small fp32 -25%, bloomz-560m -2%. 2 and 8 KB ahead did no better.
    /// </summary>
    const int StreamAhead = 4096;

    /// <summary>
    /// How far ahead an int8 GEMV asks for its rows, with prefetcht0, every line (a block's scale line too), rows
    /// of any length. Paired decode steps: 3-8% faster than t0 on rows up to 1 KB only (one line in nine unasked)
    /// and none on longer rows; nta 4 KB ahead, as fp32 and bf16 do, was 3-6% slower than this on int8.
    /// </summary>
    const int Int8Ahead = 8192;

    /// <summary>
    /// y[i * m + r] (+)= input row i (of n, prepared <paramref name="stride"/> floats apart) · weight row r, for
    /// <paramref name="rows"/> consecutive weight rows <paramref name="rowBytes"/> apart, front to back: one sequential
    /// stream per thread is what the hardware prefetcher follows best. Interleaving four weight rows measured 10-30%
    /// slower on a 250k-row lm_head; storing four rows' results at a time (against stalls when a y store and the next
    /// row's x loads meet modulo 4 KB) was faster in isolation but slower in the model. Several input rows take each
    /// weight row 4 at a time (<see cref="IRowDot.Dots"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows<T>(T kernel, float* x, int stride, int n, byte* row, long rowBytes, float* y, int m, int rows, bool accumulate) where T : struct, IRowDot
    {
        if (n == 1)
        {
            for (int r = 0; r < rows; r++, row += rowBytes) Put(y + r, kernel.Dot(row, x), accumulate);
            return;
        }
        for (int r = 0; r < rows; r++, row += rowBytes)
        {
            int i = 0;
            for (; i + 4 <= n; i += 4) kernel.Dots(row, x + (long)i * stride, stride, 4, y + r + (long)i * m, m, accumulate);
            float* xi = x + (long)i * stride, yi = y + r + (long)i * m;
            switch (n - i)
            {
                case 3: kernel.Dots(row, xi, stride, 3, yi, m, accumulate); break;
                case 2: kernel.Dots(row, xi, stride, 2, yi, m, accumulate); break;
                case 1: Put(yi, kernel.Dot(row, xi), accumulate); break;
            }
        }
    }

    /// <summary>
    /// Σ_r x · row r over <paramref name="rows"/> consecutive fp32 rows of k floats at p, by the fp32 GEMV's row
    /// kernel (the bandwidth probe's read: <see cref="Benchmarking.MachineLimits.ReadBandwidthGBps"/>).
    /// p and x 64-byte aligned, k a multiple of 16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // timed from its first call: no tier-0 code
    internal static float DotRows(float* p, long rows, int k, float* x)
    {
        var row = new F32Row(0, p, k);
        float s = 0;
        for (long r = 0; r < rows; r++) s += row.Dot((byte*)(p + r * k), x);
        return s;
    }

    /// <summary>
    /// One input row's four accumulators in the single-row kernels' order (fp32: vectors 0-3 of each step of 64
    /// elements; bf16: the even and the odd elements of each of two blocks), summed as (a0 + a1) + (a2 + a3).
    /// </summary>
    struct Acc4
    {
        public Vector512<float> A0, A1, A2, A3;

        public Acc4(Vector512<float> a0) => A0 = a0;

        /// <summary>A_j += x[16j..16j+16] * w_j.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(float* x, Vector512<float> w0, Vector512<float> w1, Vector512<float> w2, Vector512<float> w3)
        {
            A0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w0, A0);
            A1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 16), w1, A1);
            A2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 32), w2, A2);
            A3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 48), w3, A3);
        }

        /// <summary>y[i * ystride] (+)= the sum of c_i, for the first g.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Acc4 c0, Acc4 c1, Acc4 c2, Acc4 c3, int g, float* y, long ystride, bool accumulate)
        {
            Put(y, Sum((c0.A0 + c0.A1) + (c0.A2 + c0.A3)), accumulate);
            Put(y + ystride, Sum((c1.A0 + c1.A1) + (c1.A2 + c1.A3)), accumulate);
            if (g > 2) Put(y + 2 * ystride, Sum((c2.A0 + c2.A1) + (c2.A2 + c2.A3)), accumulate);
            if (g > 3) Put(y + 3 * ystride, Sum((c3.A0 + c3.A1) + (c3.A2 + c3.A3)), accumulate);
        }
    }

    /// <summary>fp32 rows; x from <see cref="PrepareRow"/>, at the rows' <see cref="Shift"/>.</summary>
    readonly struct F32Row : IRowDot
    {
        readonly int _shift, _k, _full;
        readonly bool _aligned;
        readonly Vector512<float> _head, _end;

        public F32Row(int shift, float* w, int k)
        {
            // Aligned mode: a row is read as the vectors from its 64-byte boundary, w - shift, to the end of
            // its last vector; lanes outside the row are masked (they hold the neighbours' values, x is 0 there).
            _shift = shift; _k = k; _full = (shift + k) / 16;
            _aligned = Vector512.IsHardwareAccelerated && ((nint)(w - shift) & 63) == 0 && k % 16 == 0 && _full >= 2; // every row aligned
            var lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            _head = Vector512.GreaterThanOrEqual(lanes, Vector512.Create(shift)).AsSingle();
            _end = Vector512.LessThan(lanes, Vector512.Create((shift + k) % 16)).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Dot(byte* row, float* xp)
        {
            float* w = (float*)row;
            int k = _k;
            if (_aligned)
            {
                float* wb = w - _shift;
                int full = _full;
                // Every line of the row is asked for ahead, the first and the last few too: lines left to the
                // hardware (one in eight on rows of 2 KB) stalled the stream, mt0-small fp32 decode 1.4x slower.
                Ahead((byte*)wb, 1);
                var a0 = Vector512.Load(xp) * (Vector512.Load(wb) & _head);
                Vector512<float> a1 = default, a2 = default, a3 = default;
                int v = 1;
                for (; v + 4 <= full; v += 4)
                {
                    Ahead((byte*)(wb + 16 * v), 4);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * v), Vector512.Load(wb + 16 * v), a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * v + 16), Vector512.Load(wb + 16 * v + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * v + 32), Vector512.Load(wb + 16 * v + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * v + 48), Vector512.Load(wb + 16 * v + 48), a3);
                }
                for (; v < full; v++)
                {
                    Ahead((byte*)(wb + 16 * v), 1);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * v), Vector512.Load(wb + 16 * v), a1);
                }
                // The vector holding the row's last elements lies in the same page as they do: safe to load.
                if ((_shift + k) % 16 > 0)
                {
                    Ahead((byte*)(wb + 16 * full), 1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 16 * full), Vector512.Load(wb + 16 * full) & _end, a2);
                }
                return Sum((a0 + a1) + (a2 + a3));
            }
            float* x = xp + _shift;
            int i = 0;
            float d = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> a0 = default, a1 = default;
                for (; i + 16 <= k; i += 16)
                {
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(w + i), a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(w + i + 8), a1);
                }
                d = Vector256.Sum(a0 + a1);
            }
            for (; i < k; i++) d += x[i] * w[i];
            return d;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dots(byte* row, float* xp, long stride, int g, float* y, long ystride, bool accumulate)
        {
            if (!_aligned)
            {
                DotsOneByOne(this, row, xp, stride, g, y, ystride, accumulate);
                return;
            }
            float* wb = (float*)row - _shift, x0 = xp, x1 = xp + stride, x2 = x1 + stride, x3 = x2 + stride;
            int full = _full;
            Ahead((byte*)wb, 1);
            var h = Vector512.Load(wb) & _head;
            Acc4 c0 = new(Vector512.Load(x0) * h), c1 = new(Vector512.Load(x1) * h), c2 = default, c3 = default;
            if (g > 2) c2 = new(Vector512.Load(x2) * h);
            if (g > 3) c3 = new(Vector512.Load(x3) * h);
            int v = 1;
            for (; v + 4 <= full; v += 4)
            {
                Ahead((byte*)(wb + 16 * v), 4);
                long o = 16 * v;
                var w0 = Vector512.Load(wb + o); var w1 = Vector512.Load(wb + o + 16);
                var w2 = Vector512.Load(wb + o + 32); var w3 = Vector512.Load(wb + o + 48);
                c0.Add(x0 + o, w0, w1, w2, w3);
                c1.Add(x1 + o, w0, w1, w2, w3);
                if (g > 2) c2.Add(x2 + o, w0, w1, w2, w3);
                if (g > 3) c3.Add(x3 + o, w0, w1, w2, w3);
            }
            for (; v < full; v++)
            {
                Ahead((byte*)(wb + 16 * v), 1);
                long o = 16 * v;
                var w1 = Vector512.Load(wb + o);
                c0.A1 = Vector512.FusedMultiplyAdd(Vector512.Load(x0 + o), w1, c0.A1);
                c1.A1 = Vector512.FusedMultiplyAdd(Vector512.Load(x1 + o), w1, c1.A1);
                if (g > 2) c2.A1 = Vector512.FusedMultiplyAdd(Vector512.Load(x2 + o), w1, c2.A1);
                if (g > 3) c3.A1 = Vector512.FusedMultiplyAdd(Vector512.Load(x3 + o), w1, c3.A1);
            }
            if ((_shift + _k) % 16 > 0)
            {
                Ahead((byte*)(wb + 16 * full), 1);
                long o = 16 * full;
                var w2 = Vector512.Load(wb + o) & _end;
                c0.A2 = Vector512.FusedMultiplyAdd(Vector512.Load(x0 + o), w2, c0.A2);
                c1.A2 = Vector512.FusedMultiplyAdd(Vector512.Load(x1 + o), w2, c1.A2);
                if (g > 2) c2.A2 = Vector512.FusedMultiplyAdd(Vector512.Load(x2 + o), w2, c2.A2);
                if (g > 3) c3.A2 = Vector512.FusedMultiplyAdd(Vector512.Load(x3 + o), w2, c3.A2);
            }
            Acc4.Store(c0, c1, c2, c3, g, y, ystride, accumulate);
        }
    }

    /// <summary>
    /// bf16 rows widened in registers. With Vector512, x arrives split (see <see cref="SplitEvenOdd"/>), so a
    /// uint32 load widens with one shift or one mask, and each row is read in aligned blocks from its 64-byte
    /// boundary. Rows inside the matrix run one plain loop over pairs of blocks, reading on into the next
    /// row's first elements, which meet zeros in x: any extra code in that loop (a peeled first block, a
    /// one-block remainder) measured 20-25% slower. The first and last rows, whose edges hold bytes from
    /// outside the matrix, mask the lanes outside the row instead, so no NaN from there can leak in.
    /// Without Vector512, x is in order at the rows' shift.
    /// </summary>
    readonly struct Bf16Row : IRowDot
    {
        readonly byte* _first, _lastRow;
        readonly int _shift, _k, _last, _pairs;
        readonly Vector512<uint> _head, _end;

        public Bf16Row(int shift, Weight w)
        {
            int k = w.Cols;
            _shift = shift; _k = k;
            _first = (byte*)w.Data; _lastRow = _first + (w.Rows - 1) * w.RowBytes;
            _last = SplitBlocks(k, shift) - 1;
            _pairs = shift == 0 && k % 32 != 0 ? 0 : (_last + 2) / 2; // rows of whole blocks only
            var lanes = Vector512.Create((ushort)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
            _head = Vector512.GreaterThanOrEqual(lanes, Vector512.Create((ushort)shift)).AsUInt32();
            _end = (shift == 0 ? Vector512<ushort>.AllBitsSet : Vector512.LessThan(lanes, Vector512.Create((ushort)(shift + k - 32 * _last)))).AsUInt32();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Dot(byte* row, float* xp)
        {
            ushort* w = (ushort*)row;
            if (!SplitsX(_k))
            {
                float* x = xp + _shift;
                int i = 0;
                float s = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    Vector256<float> acc = default;
                    for (; i + 8 <= _k; i += 8)
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(w + i).ToVector256()), 16).AsSingle(), acc);
                    s = Vector256.Sum(acc);
                }
                for (; i < _k; i++) s += x[i] * BitConverter.UInt32BitsToSingle((uint)w[i] << 16);
                return s;
            }
            uint* wb = (uint*)(w - _shift);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            if (_pairs > 0 && row != _first && row != _lastRow)
            {
                uint* end = wb + 32 * _pairs;
                for (float* xx = xp; wb < end; wb += 32, xx += 64)
                {
                    Ahead((byte*)wb, 2);
                    var v = Vector512.Load(wb);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xx), Bf16Even(v), a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xx + 16), Bf16Odd(v), a1);
                    v = Vector512.Load(wb + 16);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xx + 32), Bf16Even(v), a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(xx + 48), Bf16Odd(v), a3);
                }
                return Sum((a0 + a1) + (a2 + a3));
            }
            for (int b = 0; b <= _last; b++)
            {
                Ahead((byte*)(wb + 16 * b), 1);
                var v = Vector512.Load(wb + 16 * b);
                if (b == 0) v &= _head;
                // The block holding the row's last elements lies in the same cache line (hence page) as they do.
                if (b == _last) v &= _end;
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 32 * b), Bf16Even(v), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xp + 32 * b + 16), Bf16Odd(v), a1);
            }
            float d = Sum(a0 + a1);
            for (int e = 32 * (_last + 1) - _shift; e < _k; e++) d += xp[e + _shift] * BitConverter.UInt32BitsToSingle((uint)w[e] << 16);
            return d;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dots(byte* row, float* xp, long stride, int g, float* y, long ystride, bool accumulate)
        {
            if (_pairs == 0 || row == _first || row == _lastRow || !SplitsX(_k))
            {
                DotsOneByOne(this, row, xp, stride, g, y, ystride, accumulate);
                return;
            }
            uint* wb = (uint*)((ushort*)row - _shift), end = wb + 32 * _pairs;
            float* x0 = xp, x1 = xp + stride, x2 = xp + 2 * stride, x3 = xp + 3 * stride;
            Acc4 c0 = default, c1 = default, c2 = default, c3 = default;
            for (long o = 0; wb < end; wb += 32, o += 64)
            {
                Ahead((byte*)wb, 2);
                var v = Vector512.Load(wb);
                var e0 = Bf16Even(v); var d0 = Bf16Odd(v);
                v = Vector512.Load(wb + 16);
                var e1 = Bf16Even(v); var d1 = Bf16Odd(v);
                c0.Add(x0 + o, e0, d0, e1, d1);
                c1.Add(x1 + o, e0, d0, e1, d1);
                if (g > 2) c2.Add(x2 + o, e0, d0, e1, d1);
                if (g > 3) c3.Add(x3 + o, e0, d0, e1, d1);
            }
            Acc4.Store(c0, c1, c2, c3, g, y, ystride, accumulate);
        }
    }

    /// <summary>
    /// int8 rows (blocks of scales and values, see <see cref="WeightType.I8"/>) of 32-element groups, with x from
    /// <see cref="QuantizeX"/>: per group, the weights widened to int16 and multiplied with x in pairs into
    /// int32 (vpmaddwd), then one fp32 conversion and one FMA with the group's scale. Four vector ops per 32
    /// weights: widening the weights to fp32 took twelve per 64 and was issue-bound below the memory bandwidth.
    /// </summary>
    readonly struct Q8Row : IRowDot
    {
        readonly int _groups;

        public Q8Row(int k) => _groups = k / Weight.GroupSize;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Dot(byte* row, float* xq)
        {
            short* x = (short*)(xq + 16);
            float d = 0;
            Vector512<float> a0 = default, a1 = default;
            Vector256<float> acc = default;
            // Block by block: its line of scales, then its values (see WeightType.I8).
            for (int g0 = 0; g0 < _groups; g0 += Weight.BlockGroups, row += Weight.BlockBytes)
            {
                float* scales = (float*)row;
                if (Sse.IsSupported) Sse.Prefetch0(row + Int8Ahead); // with the values' below: every line of the stream
                sbyte* q = (sbyte*)(row + 64);
                int n = Math.Min(Weight.BlockGroups, _groups - g0), g = 0;
                if (Avx512BW.IsSupported)
                {
                    for (; g + 2 <= n; g += 2, q += 64, x += 64)
                    {
                        Sse.Prefetch0(q + Int8Ahead);
                        var p0 = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(q)), Vector512.Load(x));
                        var p1 = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(q + 32)), Vector512.Load(x + 32));
                        a0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p0), Vector512.Create(scales[g]), a0);
                        a1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p1), Vector512.Create(scales[g + 1]), a1);
                    }
                }
                else if (Avx2.IsSupported)
                    for (; g < n; g++, q += 32, x += 32)
                    {
                        var p0 = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(q)), Vector256.Load(x));
                        var p1 = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load(q + 16)), Vector256.Load(x + 16));
                        acc = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(p0 + p1), Vector256.Create(scales[g]), acc);
                    }
                for (; g < n; g++, q += 32, x += 32)
                {
                    int dot = 0;
                    for (int i = 0; i < Weight.GroupSize; i++) dot += q[i] * x[i];
                    d += dot * scales[g];
                }
            }
            if (Avx512BW.IsSupported) d += Sum(a0 + a1);
            else if (Avx2.IsSupported) d += Vector256.Sum(acc);
            return d * xq[0];
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dots(byte* row, float* xq, long stride, int g, float* y, long ystride, bool accumulate)
        {
            if (!Avx512BW.IsSupported || _groups % 2 != 0) // an odd group count leaves a scalar group per row
            {
                DotsOneByOne(this, row, xq, stride, g, y, ystride, accumulate);
                return;
            }
            short* x0 = (short*)(xq + 16), x1 = (short*)(xq + stride + 16), x2 = (short*)(xq + 2 * stride + 16), x3 = (short*)(xq + 3 * stride + 16);
            Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            for (int g0 = 0; g0 < _groups; g0 += Weight.BlockGroups, row += Weight.BlockBytes)
            {
                float* scales = (float*)row;
                Sse.Prefetch0(row + Int8Ahead);
                sbyte* q = (sbyte*)(row + 64);
                int n = Math.Min(Weight.BlockGroups, _groups - g0);
                for (int j = 0; j < n; j += 2, q += 64)
                {
                    Sse.Prefetch0(q + Int8Ahead);
                    long o = (long)(g0 + j) * Weight.GroupSize;
                    var q0 = Avx512BW.ConvertToVector512Int16(Vector256.Load(q));
                    var q1 = Avx512BW.ConvertToVector512Int16(Vector256.Load(q + 32));
                    var s0 = Vector512.Create(scales[j]);
                    var s1 = Vector512.Create(scales[j + 1]);
                    a00 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(x0 + o))), s0, a00);
                    a01 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(x0 + o + 32))), s1, a01);
                    a10 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(x1 + o))), s0, a10);
                    a11 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(x1 + o + 32))), s1, a11);
                    if (g > 2)
                    {
                        a20 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(x2 + o))), s0, a20);
                        a21 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(x2 + o + 32))), s1, a21);
                    }
                    if (g > 3)
                    {
                        a30 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(x3 + o))), s0, a30);
                        a31 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(x3 + o + 32))), s1, a31);
                    }
                }
            }
            // As Dot: d = 0, d += the vector sum, times the row's scale.
            float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
            d0 += Sum(a00 + a01); d1 += Sum(a10 + a11);
            Put(y, d0 * xq[0], accumulate);
            Put(y + ystride, d1 * xq[stride], accumulate);
            if (g > 2) { d2 += Sum(a20 + a21); Put(y + 2 * ystride, d2 * xq[2 * stride], accumulate); }
            if (g > 3) { d3 += Sum(a30 + a31); Put(y + 3 * ystride, d3 * xq[3 * stride], accumulate); }
        }
    }

    /// <summary>
    /// Asks for the <paramref name="lines"/> cache lines <see cref="StreamAhead"/> bytes past <paramref name="p"/>,
    /// non-temporally (nothing where there is no SSE: the check is a JIT-time constant).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Ahead(byte* p, int lines)
    {
        if (!Sse.IsSupported) return;
        for (int l = 0; l < lines; l++) Sse.PrefetchNonTemporal(p + StreamAhead + 64 * l);
    }

    /// <summary>The lanes' sum as a halving tree (Vector512.Sum adds four 128-bit quarters one by one: twice the ops).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sum(Vector512<float> v)
    {
        var h = v.GetLower() + v.GetUpper();
        var q = h.GetLower() + h.GetUpper();
        q += Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1));
        return q.ToScalar() + q.GetElement(1);
    }

    /// <summary>Rows [r, r+nr) of a weight as fp32 into dst.</summary>
    static void Widen(Weight w, int r, int nr, float* dst)
    {
        for (int j = 0; j < nr; j++) w.ReadRow(r + j, dst + (long)j * w.Cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int k) =>
        TensorPrimitives.Dot(new ReadOnlySpan<float>(a, k), new ReadOnlySpan<float>(b, k));

    /// <summary>
    /// Four dot products of x with four consecutive rows (x is loaded once for all four): 16 input rows or more
    /// without Vector512 (see <see cref="MatMulRows"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dot4(float* x, float* w, int k, out float d0, out float d1, out float d2, out float d3)
    {
        int i = 0;
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 8 <= k; i += 8)
            {
                var xv = Vector256.Load(x + i);
                a0 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w + i), a0);
                a1 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w1 + i), a1);
                a2 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w2 + i), a2);
                a3 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w3 + i), a3);
            }
            d0 = Vector256.Sum(a0); d1 = Vector256.Sum(a1); d2 = Vector256.Sum(a2); d3 = Vector256.Sum(a3);
        }
        else { d0 = d1 = d2 = d3 = 0; }
        for (; i < k; i++)
        {
            float xv = x[i];
            d0 += xv * w[i]; d1 += xv * w1[i]; d2 += xv * w2[i]; d3 += xv * w3[i];
        }
    }

    /// <summary>T5LayerNorm: x * rsqrt(mean(x²) + eps) * weight, no mean subtraction, no bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        float ms = TensorPrimitives.SumOfSquares(x) / x.Length;
        float inv = 1f / MathF.Sqrt(ms + eps);
        TensorPrimitives.Multiply(x, inv, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    /// <summary>
    /// <see cref="RmsNorm(ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float})"/> of the first
    /// <paramref name="rows"/> rows of x (rows as long as the weight) into y, which may be x. A prompt's rows go to
    /// all the threads (the product before wrote half of every row from each core): mt0-large's encoder spent 1.4 ms
    /// in its norms this way, 2.0 ms with one core doing them all (medians of 11 passes, alternated).
    /// </summary>
    public static void RmsNorm(float[] x, int rows, float[] weight, float eps, float[] y)
    {
        int d = weight.Length;
        if (rows < ParallelNormRows || Threads <= 1)
            for (int i = 0; i < rows; i++) RmsNorm(x.AsSpan(i * d, d), weight, eps, y.AsSpan(i * d, d));
        else RmsNormParallel(x, rows, weight, eps, y);
    }

    /// <summary><see cref="LayerNorm(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float})"/> of the first rows of x, as the RmsNorm of rows.</summary>
    public static void LayerNorm(float[] x, int rows, float[] weight, float[] bias, float eps, float[] y)
    {
        int d = weight.Length;
        if (rows < ParallelNormRows || Threads <= 1)
            for (int i = 0; i < rows; i++) LayerNorm(x.AsSpan(i * d, d), weight, bias, eps, y.AsSpan(i * d, d));
        else LayerNormParallel(x, rows, weight, bias, eps, y);
    }

    // Fewer rows (a decode step's) stay on the caller: no closure, no fork.
    const int ParallelNormRows = 16;

    static void RmsNormParallel(float[] x, int rows, float[] weight, float eps, float[] y) =>
        WorkerPool.For(rows, Threads, i => RmsNorm(x.AsSpan(i * weight.Length, weight.Length), weight, eps, y.AsSpan(i * weight.Length, weight.Length)));

    static void LayerNormParallel(float[] x, int rows, float[] weight, float[] bias, float eps, float[] y) =>
        WorkerPool.For(rows, Threads, i => LayerNorm(x.AsSpan(i * weight.Length, weight.Length), weight, bias, eps, y.AsSpan(i * weight.Length, weight.Length)));

    /// <summary>LayerNorm with bias (BLOOM): (x - mean) / sqrt(var + eps) * weight + bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        float mean = TensorPrimitives.Sum(x) / x.Length;
        TensorPrimitives.Subtract(x, mean, y);
        float var = TensorPrimitives.SumOfSquares(y) / x.Length;
        TensorPrimitives.Multiply(y, 1f / MathF.Sqrt(var + eps), y);
        TensorPrimitives.FusedMultiplyAdd(y, weight, bias, y);
    }

    /// <summary>
    /// In-place GELU, tanh approximation: 0.5·x·(1 + tanh(c·x·(1 + 0.044715·x²))), c = sqrt(2/π)
    /// (<c>gelu_new</c> in T5; BLOOM writes c as 0.79788456), times <paramref name="gate"/> elementwise when
    /// given (T5's gated-gelu). Computed as x / (1 + exp(-2u)), the same function (0.5·(1 + tanh u) is the
    /// logistic of 2u), in one pass of one exp and one division per element: the tanh form in TensorPrimitives
    /// passes took 2.9 ms of mt0-large's 130 ms encoder. A long prompt's activations go to all the threads.
    /// </summary>
    public static void GeluTanh(Span<float> x, ReadOnlySpan<float> gate = default)
    {
        if (!gate.IsEmpty && gate.Length != x.Length) throw new ArgumentException("the gate must be as long as x");
        int chunks = (x.Length + GeluChunk - 1) / GeluChunk;
        int parts = x.Length >= 32 * GeluChunk ? Math.Min(chunks, Threads * 8) : 1;
        fixed (float* p = x, g = gate)
            if (parts == 1) Gelu(p, g, 0, x.Length); // a decode step's: no closure, no allocation
            else GeluParallel((nint)p, (nint)g, x.Length, chunks, parts);
    }

    const int GeluChunk = 512;

    static void GeluParallel(nint px, nint pg, int length, int chunks, int parts) =>
        WorkerPool.For(parts, Threads, c => Gelu((float*)px, (float*)pg,
            (int)Math.Min(length, (long)chunks * c / parts * GeluChunk), (int)Math.Min(length, (long)chunks * (c + 1) / parts * GeluChunk)));

    /// <summary>Elements [from, to) of p (times the gate's, unless null).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Gelu(float* p, float* gate, int from, int to)
    {
        // -2u = a·x + b·x³
        const float a = -2 * 0.7978845608f, b = a * 0.044715f;
        int i = from;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= to; i += 16)
            {
                var x = Vector512.Load(p + i);
                var y = x / (Vector512<float>.One + Vector512.Exp(x * Vector512.FusedMultiplyAdd(Vector512.Create(b), x * x, Vector512.Create(a))));
                if (gate is not null) y *= Vector512.Load(gate + i);
                y.Store(p + i);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= to; i += 8)
            {
                var x = Vector256.Load(p + i);
                var y = x / (Vector256<float>.One + Vector256.Exp(x * Vector256.FusedMultiplyAdd(Vector256.Create(b), x * x, Vector256.Create(a))));
                if (gate is not null) y *= Vector256.Load(gate + i);
                y.Store(p + i);
            }
        for (; i < to; i++)
        {
            float x = p[i], y = x / (1 + MathF.Exp(x * MathF.FusedMultiplyAdd(b, x * x, a)));
            p[i] = gate is null ? y : y * gate[i];
        }
    }

    /// <summary>
    /// The index of x's largest value, as <see cref="TensorPrimitives.IndexOfMax{T}(ReadOnlySpan{T})"/> (the first
    /// of equal values; the first NaN if there is one; +0 above -0), a vocabulary's logits split over the threads:
    /// the lm_head GEMV's threads wrote those halves, so each mostly reads what its own core wrote (mt0's 250k
    /// logits: 18 µs on one thread, 8-11 µs on two, of a 3-8 ms mt0-small step; TensorPrimitives alone took 75-90).
    /// </summary>
    public static int IndexOfMax(ReadOnlySpan<float> x)
    {
        fixed (float* p = x)
            return x.Length < 65_536 || Threads <= 1 ? FirstIndexOfMax(p, x.Length) : (_argMax ??= new ArgMaxJob()).Run(p, x.Length);
    }

    /// <summary>
    /// <see cref="TensorPrimitives.IndexOfMax{T}(ReadOnlySpan{T})"/> of n floats at p in two light passes: the largest
    /// value (vmaxps), then the first element equal to it. TensorPrimitives tracks indices element by element and
    /// its NaN and signed-zero rules on every vector: 1.4 cycles a float, where these passes take a quarter of that.
    /// Where those rules matter (a NaN or an infinity among the values, or a largest value of zero, where -0 and +0
    /// compare equal) the values go to TensorPrimitives itself.
    /// </summary>
    static int FirstIndexOfMax(float* p, int n)
    {
        if (!Vector512.IsHardwareAccelerated || n < 64) return TensorPrimitives.IndexOfMax(new ReadOnlySpan<float>(p, n));
        var m0 = Vector512.Create(float.NegativeInfinity);
        Vector512<float> m1 = m0, m2 = m0, m3 = m0, finite = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            var a0 = Vector512.Load(p + i);
            var a1 = Vector512.Load(p + i + 16);
            var a2 = Vector512.Load(p + i + 32);
            var a3 = Vector512.Load(p + i + 48);
            m0 = Vector512.MaxNative(m0, a0); m1 = Vector512.MaxNative(m1, a1);
            m2 = Vector512.MaxNative(m2, a2); m3 = Vector512.MaxNative(m3, a3);
            // x * 0 is zero for every finite x: the sum stays zero unless a NaN or an infinity passes (or four
            // finite values add up to one, which only sends the values to TensorPrimitives).
            finite = Vector512.FusedMultiplyAdd((a0 + a1) + (a2 + a3), Vector512<float>.Zero, finite);
        }
        float max = MaxOf(Vector512.MaxNative(Vector512.MaxNative(m0, m1), Vector512.MaxNative(m2, m3)));
        for (; i < n; i++)
        {
            if (!float.IsFinite(p[i])) return TensorPrimitives.IndexOfMax(new ReadOnlySpan<float>(p, n));
            max = Math.Max(max, p[i]);
        }
        if (Sum(finite) != 0 || max == 0) return TensorPrimitives.IndexOfMax(new ReadOnlySpan<float>(p, n));
        var target = Vector512.Create(max);
        for (i = 0; i + 16 <= n; i += 16)
            if (Vector512.Equals(Vector512.Load(p + i), target).ExtractMostSignificantBits() is var hits and not 0)
                return i + BitOperations.TrailingZeroCount(hits);
        while (p[i] != max) i++;
        return i;
    }

    [ThreadStatic] static ArgMaxJob? _argMax;

    /// <summary>One parallel <see cref="IndexOfMax"/>, one object per calling thread, reused: a decode step allocates nothing.</summary>
    sealed class ArgMaxJob
    {
        float* _x;
        int _length, _parts;
        int[] _best = [];
        readonly Action<int> _body;

        public ArgMaxJob() => _body = Part;

        public int Run(float* x, int length)
        {
            _x = x; _length = length; _parts = Threads;
            if (_best.Length < _parts) _best = new int[_parts];
            WorkerPool.For(_parts, Threads, _body);
            // Parts in order, so the first of equal values (and the first NaN) wins, as in one pass.
            int best = _best[0];
            for (int p = 1; p < _parts && !float.IsNaN(x[best]); p++)
            {
                float a = x[_best[p]], b = x[best];
                if (float.IsNaN(a) || a > b || a == 0 && b == 0 && float.IsNegative(b) && !float.IsNegative(a)) best = _best[p];
            }
            return best;
        }

        void Part(int p)
        {
            int from = (int)((long)_length * p / _parts), to = (int)((long)_length * (p + 1) / _parts);
            _best[p] = from + FirstIndexOfMax(_x + from, to - from);
        }
    }

    /// <summary>In-place log-softmax of one row.</summary>
    public static void LogSoftmax(Span<float> x) => TensorPrimitives.Subtract(x, LogSumExp(x), x);

    /// <summary>log Σ exp(x), shifted by the max so it cannot overflow; the sum is kept in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = TensorPrimitives.Max(x);
        Span<float> t = stackalloc float[1024];
        double sum = 0;
        for (int o = 0; o < x.Length; o += t.Length)
        {
            var xs = x.Slice(o, Math.Min(t.Length, x.Length - o));
            var ts = t[..xs.Length];
            TensorPrimitives.Subtract(xs, max, ts);
            TensorPrimitives.Exp(ts, ts);
            sum += TensorPrimitives.Sum(ts);
        }
        return max + (float)Math.Log(sum);
    }

    /// <summary>In-place softmax of one row (attention probabilities; masked entries hold -inf).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Softmax(Span<float> x)
    {
        if (!Vector512.IsHardwareAccelerated || x.Length < 16)
        {
            TensorPrimitives.Subtract(x, TensorPrimitives.Max(x), x);
            TensorPrimitives.Exp(x, x); // exp(-inf) = 0 keeps masked keys out
            TensorPrimitives.Multiply(x, 1f / TensorPrimitives.Sum(x), x);
            return;
        }
        // Three passes of our own (max, exp and sum, scale) where five TensorPrimitives calls spent more on their
        // entry than on an attention row's 64 elements. The last vector overlaps the one before it, masked where
        // the two share elements, so that no element goes through a different exp.
        int n = x.Length, last = n - 16;
        fixed (float* p = x)
        {
            var m = Vector512.Load(p + last);
            for (int i = 0; i < last; i += 16) m = Vector512.Max(m, Vector512.Load(p + i));
            var vmax = Vector512.Create(MaxOf(m));
            var fresh = Vector512.GreaterThanOrEqual(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(16 - n % 16 & 15)).AsSingle();
            var tail = Vector512.Exp(Vector512.Load(p + last) - vmax);
            var sum = Vector512<float>.Zero;
            for (int i = 0; i < last; i += 16)
            {
                var e = Vector512.Exp(Vector512.Load(p + i) - vmax);
                e.Store(p + i);
                sum += e;
            }
            sum += tail & fresh;
            tail.Store(p + last);
            var inv = Vector512.Create(1f / Sum(sum));
            for (int i = 0; i < last; i += 16) (Vector512.Load(p + i) * inv).Store(p + i);
            // The overlapped elements were scaled by the loop already.
            Vector512.ConditionalSelect(fresh, tail * inv, Vector512.Load(p + last)).Store(p + last);
        }
    }

    /// <summary>The largest lane (NaN if any lane is NaN, as <see cref="TensorPrimitives.Max{T}(ReadOnlySpan{T})"/>).</summary>
    static float MaxOf(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }
}
