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
