using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Xmtf.Tensors;

namespace Xmtf.Benchmarks;

/// <summary>
/// <see cref="Kernels.MatMul"/> at the mT0 shapes: one row is a decode step's GEMV (bandwidth bound), 8 rows a
/// decoding batch's (each weight row widened once per 4 input rows), 64 rows the encoder's GEMM on a 64-token
/// prompt (FMA bound). Shapes are [out, in] as the checkpoints store them.
/// </summary>
public unsafe class MatMulBenchmarks
{
    /// <summary>mt0-small q/k/v, wi and wo; mt0-base wi and wo.</summary>
    [Params("384x512", "1024x512", "512x1024", "2048x768", "768x2048")]
    public string Shape { get; set; } = "";

    [Params(WeightType.F32, WeightType.BF16, WeightType.I8)]
    public WeightType Type { get; set; }

    [Params(1, 8, 64)]
    public int Rows { get; set; }

    Weight _w = null!;
    float* _x, _y;

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x').Select(int.Parse).ToArray();
        var rng = new Random(1);
        var values = new float[dims[0] * dims[1]];
        foreach (ref var v in values.AsSpan()) v = (float)(rng.NextDouble() - 0.5) * 0.1f;
        _w = Weight.FromF32(values, dims[0], dims[1], Type);
        _x = Filled(Rows * dims[1], rng);
        _y = Filled(Rows * dims[0], rng);
    }

    static float* Filled(int n, Random rng)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)n * sizeof(float), 64);
        for (int i = 0; i < n; i++) p[i] = (float)rng.NextDouble() - 0.5f;
        return p;
    }

    [Benchmark]
    public void MatMul() => Kernels.MatMul(_x, Rows, _w, _y);

    [GlobalCleanup]
    public void Cleanup()
    {
        _w.Dispose();
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_y);
    }
}

/// <summary>The per-row norms (mT5's RMSNorm, BLOOM's LayerNorm) at the models' widths.</summary>
public class NormBenchmarks
{
    [Params(512, 768, 1024, 2048)]
    public int Width { get; set; }

    float[] _x = [], _w = [], _b = [], _y = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        float[] Random() => Enumerable.Range(0, Width).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        (_x, _w, _b, _y) = (Random(), Random(), Random(), new float[Width]);
    }

    [Benchmark]
    public void RmsNorm() => Kernels.RmsNorm(_x, _w, 1e-6f, _y);

    [Benchmark]
    public void LayerNorm() => Kernels.LayerNorm(_x, _w, _b, 1e-5f, _y);
}

/// <summary>mT5's gated GELU over a 64-token prompt of mt0-large (64 x 2816) and over one decode row of mt0-small (1024).</summary>
public class GeluBenchmarks
{
    float[] _x = [], _gate = [], _work = [];

    [Params(1024, 64 * 2816)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Enumerable.Range(0, Length).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        _gate = Enumerable.Range(0, Length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _work = new float[Length];
    }

    [Benchmark]
    public void GatedGelu()
    {
        _x.CopyTo(_work, 0); // in place: start from the same values every time
        Kernels.GeluTanh(_work, _gate);
    }
}

/// <summary>The softmax of one attention row: 64 keys (a 64-token prompt) and 400 (a long cache).</summary>
public class SoftmaxBenchmarks
{
    float[] _scores = [], _row = [];

    [Params(64, 400)]
    public int Keys { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _scores = Enumerable.Range(0, Keys).Select(_ => (float)(rng.NextDouble() * 10)).ToArray();
        _row = new float[Keys];
    }

    [Benchmark]
    public void Softmax()
    {
        _scores.CopyTo(_row, 0);
        Kernels.Softmax(_row);
    }
}

/// <summary>
/// <see cref="Attention.Compute"/> at mt0-large's shape (16 heads of 64): 64 queries (an encoder layer's over a 64-token prompt)
/// over 64 or 256 keys (transposed, four queries at a time, the relative-position bias added per query), and one decode step's
/// self-attention over a cache of 64 or 256 positions (head-major, as <see cref="KvCache"/> keeps it).
/// </summary>
public class AttentionBenchmarks
{
    const int Heads = 16, HeadDim = 64, Width = Heads * HeadDim;
    float[] _q = [], _k = [], _v = [], _ctx = [], _bias = [];
    bool[] _mask = [];
    KvLayout _layout;
    Func<int, int, int> _count = (_, _) => 0;
    ScoreBias? _addBias;

    [Params(1, 64)]
    public int Queries { get; set; }

    [Params(64, 256)]
    public int Keys { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        int keys = Keys;
        (_q, _k, _v, _ctx) = (Random(Queries * Width), Random(keys * Width), Random(keys * Width), new float[Queries * Width]);
        _mask = Enumerable.Repeat(true, keys).ToArray();
        _bias = Random(Heads * (2 * keys - 1));
        _count = (_, _) => keys;
        // The encoder's rows are [position][head * 64]; a decode cache is [head][position][64].
        _layout = Queries > 1 ? KvLayout.RowMajor(r => r * keys, Heads, HeadDim) : KvLayout.HeadMajor(r => r, Heads, keys, HeadDim);
        _addBias = (_, h, i, scores) => System.Numerics.Tensors.TensorPrimitives.Add(scores, _bias.AsSpan(h * (2 * keys - 1) + keys - 1 - i, scores.Length), scores);
    }

    [Benchmark]
    public void Layer() => Attention.Compute(_q, Queries, 1, _k, _v, _layout, Heads, HeadDim, _count, _ => _mask, _addBias, 1f, _ctx);
}
