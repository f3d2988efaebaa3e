using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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

    const int RowBlock = 4;

    /// <summary>y[n, W.Rows] (+)= x[n, W.Cols] · Wᵀ.</summary>
    public static void MatMul(float* x, int n, Weight w, float* y, bool accumulate = false)
    {
        int m = w.Rows;
        int blocks = (m + RowBlock - 1) / RowBlock;
        // Enough chunks for load balance, few enough that each one streams a good slice of the weight.
        int chunks = Math.Min(blocks, Math.Max(1, Threads) * 8);
        nint px = (nint)x, py = (nint)y;
        if (chunks <= 1 || Threads <= 1 || (long)m * w.Cols * Math.Max(n, 1) < 32_768)
        {
            MatMulRows(x, n, w, y, 0, m, accumulate);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, c =>
        {
            int r0 = (int)((long)blocks * c / chunks) * RowBlock;
            int r1 = Math.Min(m, (int)((long)blocks * (c + 1) / chunks) * RowBlock);
            MatMulRows((float*)px, n, w, (float*)py, r0, r1, accumulate);
        });
    }

    [ThreadStatic] static float[]? _scratch;

    static void MatMulRows(float* x, int n, Weight w, float* y, int r0, int r1, bool accumulate)
    {
        int k = w.Cols, m = w.Rows;
        float* rows;
        float[]? scratch = null;
        if (w.Type != WeightType.F32)
        {
            scratch = _scratch;
            if (scratch is null || scratch.Length < RowBlock * k) _scratch = scratch = new float[RowBlock * k];
        }
        fixed (float* s = scratch)
        {
            for (int r = r0; r < r1; r += RowBlock)
            {
                int nr = Math.Min(RowBlock, r1 - r);
                if (w.Type == WeightType.F32) rows = (float*)w.Data + (long)r * k;
                else { Widen(w, r, nr, s); rows = s; }
                for (int i = 0; i < n; i++)
                {
                    float* xi = x + (long)i * k;
                    float* yi = y + (long)i * m + r;
                    if (nr == RowBlock)
                    {
                        Dot4(xi, rows, k, out var d0, out var d1, out var d2, out var d3);
                        if (accumulate) { yi[0] += d0; yi[1] += d1; yi[2] += d2; yi[3] += d3; }
                        else { yi[0] = d0; yi[1] = d1; yi[2] = d2; yi[3] = d3; }
                    }
                    else
                        for (int j = 0; j < nr; j++)
                        {
                            float d = Dot(xi, rows + (long)j * k, k);
                            yi[j] = accumulate ? yi[j] + d : d;
                        }
                }
            }
        }
    }

    /// <summary>Rows [r, r+nr) of a bf16 / int8 weight widened to fp32 into dst.</summary>
    static void Widen(Weight w, int r, int nr, float* dst)
    {
        int k = w.Cols;
        long o = (long)r * k;
        int len = nr * k;
        if (w.Type == WeightType.BF16)
        {
            ushort* src = (ushort*)w.Data + o;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; i + 32 <= len; i += 32)
                {
                    var (lo, hi) = Vector512.Widen(Vector512.Load(src + i));
                    Vector512.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                    Vector512.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 16);
                }
            for (; i < len; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
        }
        else
        {
            sbyte* q = (sbyte*)w.Data + o;
            float* sc = w.Scales + o / Weight.GroupSize;
            for (int g = 0; g < len / Weight.GroupSize; g++)
            {
                float s = sc[g];
                for (int i = 0; i < Weight.GroupSize; i++) dst[g * Weight.GroupSize + i] = q[g * Weight.GroupSize + i] * s;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int k) =>
        TensorPrimitives.Dot(new ReadOnlySpan<float>(a, k), new ReadOnlySpan<float>(b, k));

    /// <summary>Four dot products of x with four consecutive rows (x is loaded once for all four).</summary>
    static void Dot4(float* x, float* w, int k, out float d0, out float d1, out float d2, out float d3)
    {
        int i = 0;
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 16 <= k; i += 16)
            {
                var xv = Vector512.Load(x + i);
                a0 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w + i), a0);
                a1 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w1 + i), a1);
                a2 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w2 + i), a2);
                a3 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w3 + i), a3);
            }
            d0 = Vector512.Sum(a0); d1 = Vector512.Sum(a1); d2 = Vector512.Sum(a2); d3 = Vector512.Sum(a3);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 8)
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
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        float ms = TensorPrimitives.SumOfSquares(x) / x.Length;
        float inv = 1f / MathF.Sqrt(ms + eps);
        TensorPrimitives.Multiply(x, inv, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    /// <summary>LayerNorm with bias (BLOOM): (x - mean) / sqrt(var + eps) * weight + bias.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        float mean = TensorPrimitives.Sum(x) / x.Length;
        TensorPrimitives.Subtract(x, mean, y);
        float var = TensorPrimitives.SumOfSquares(y) / x.Length;
        TensorPrimitives.Multiply(y, 1f / MathF.Sqrt(var + eps), y);
        TensorPrimitives.FusedMultiplyAdd(y, weight, bias, y);
    }

    /// <summary>GELU, tanh approximation (<c>gelu_new</c> in T5, <c>bloom_gelu_forward</c> in BLOOM).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(0.7978845608f * (x + 0.044715f * x * x * x)));

    /// <summary>In-place log-softmax of one row.</summary>
    public static void LogSoftmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        TensorPrimitives.Subtract(x, max + (float)Math.Log(sum), x);
    }

    /// <summary>In-place softmax of one row (attention probabilities; masked entries hold -inf).</summary>
    public static void Softmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        float sum = 0;
        for (int i = 0; i < x.Length; i++) sum += x[i] = MathF.Exp(x[i] - max);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }
}
