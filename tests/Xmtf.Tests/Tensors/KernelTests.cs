using Xmtf.Tensors;

namespace Xmtf.Tests.Tensors;

/// <summary>The matrix kernels against a plain triple loop, over shapes that hit every tail.</summary>
public unsafe class KernelTests
{
    [Theory]
    [InlineData(1, 7, 5), InlineData(1, 64, 33), InlineData(1, 96, 130), InlineData(3, 64, 9), InlineData(4, 128, 8)]
    [InlineData(7, 96, 13), InlineData(9, 1024, 37), InlineData(64, 512, 300), InlineData(1, 800, 19), InlineData(5, 800, 7)]
    [InlineData(16, 64, 9), InlineData(17, 300, 70), InlineData(33, 96, 24), InlineData(70, 40, 8), InlineData(40, 99, 17)]
    public void MatMulMatchesReference(int n, int k, int m)
    {
        var rnd = new Random(n * 1000 + k * 10 + m);
        var x = Enumerable.Range(0, n * k).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        var wf = Enumerable.Range(0, m * k).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        foreach (var type in new[] { WeightType.F32, WeightType.BF16, WeightType.I8 })
        {
            using var w = Weight.FromF32(wf, m, k, type);
            // The reference uses the weight as stored (rounded to bf16 / int8), read back row by row.
            var stored = new float[m * k];
            for (int r = 0; r < m; r++) w.ReadRow(r, stored.AsSpan(r * k, k));
            // Fewer than 16 input rows against int8 weights (decoding, a batch, beams) are quantized to int16, row by row.
            var xr = w.Type == WeightType.I8 && n < 16 ? Q16(x, k) : x;
            var y = Enumerable.Repeat(1f, n * m).ToArray();
            foreach (var threads in new[] { 1, 2 })
            {
                Kernels.Threads = threads;
                foreach (var accumulate in new[] { false, true })
                {
                    Array.Fill(y, 1f);
                    fixed (float* px = x, py = y) Kernels.MatMul(px, n, w, py, accumulate);
                    for (int i = 0; i < n; i++)
                        for (int r = 0; r < m; r++)
                        {
                            double d = accumulate ? 1 : 0;
                            for (int j = 0; j < k; j++) d += xr[i * k + j] * stored[r * k + j];
                            Assert.True(Math.Abs(d - y[i * m + r]) < 1e-4 * (1 + Math.Abs(d)), $"{type} threads={threads} acc={accumulate} [{i},{r}]: {d} vs {y[i * m + r]}");
                        }
                }
            }
        }
        Kernels.Threads = Environment.ProcessorCount;
    }

    /// <summary>
    /// A few rows (a decoding batch, beams) get, each, exactly what the row gets alone, in every format, weights
    /// used in place from an offset too (in bytes past a 64-byte boundary; rows not whole vectors go one by one).
    /// </summary>
    [Theory]
    [InlineData(WeightType.F32, 2, 512, 300), InlineData(WeightType.F32, 7, 96, 37, 8), InlineData(WeightType.F32, 15, 1024, 40)]
    [InlineData(WeightType.F32, 4, 100, 33), InlineData(WeightType.F32, 6, 48, 21, 40), InlineData(WeightType.F32, 3, 2816, 9)]
    [InlineData(WeightType.I8, 7, 2816, 9), InlineData(WeightType.I8, 4, 32, 50), InlineData(WeightType.I8, 6, 1056, 11)]
    [InlineData(WeightType.I8, 2, 512, 300), InlineData(WeightType.I8, 5, 96, 70), InlineData(WeightType.I8, 15, 1024, 40)]
    [InlineData(WeightType.BF16, 2, 512, 300), InlineData(WeightType.BF16, 5, 96, 70), InlineData(WeightType.BF16, 15, 1024, 40)]
    [InlineData(WeightType.BF16, 8, 64, 9), InlineData(WeightType.BF16, 4, 100, 33), InlineData(WeightType.BF16, 7, 96, 37, 34)]
    [InlineData(WeightType.BF16, 9, 1024, 20, 8), InlineData(WeightType.BF16, 3, 160, 11, 2)]
    public void RowsInABatchMatchTheRowAlone(WeightType type, int n, int k, int m, int offset = -1)
    {
        var rnd = new Random(n + k + m);
        var x = Enumerable.Range(0, n * k).Select(_ => (float)(rnd.NextDouble() - 0.5) * (1 + _ / k)).ToArray();
        var wf = Enumerable.Range(0, m * k).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        using var made = Weight.FromF32(wf, m, k, type);
        long bytes = made.ByteCount;
        byte* raw = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes + 128, 64);
        try
        {
            new Span<byte>(raw, (int)bytes + 128).Fill(0xFF); // NaN around the rows
            Buffer.MemoryCopy(made.Data, raw + Math.Max(offset, 0), bytes, bytes);
            using var placed = offset < 0 ? null : Weight.InPlace(m, k, type, raw + offset);
            var w = placed ?? made;
            var batch = new float[n * m];
            var alone = new float[m];
            foreach (var threads in new[] { 1, 2 })
            {
                Kernels.Threads = threads;
                foreach (var accumulate in new[] { false, true })
                {
                    Array.Fill(batch, 0.5f);
                    fixed (float* px = x, pb = batch, pa = alone)
                    {
                        Kernels.MatMul(px, n, w, pb, accumulate);
                        for (int i = 0; i < n; i++)
                        {
                            Array.Fill(alone, 0.5f);
                            Kernels.MatMul(px + i * k, 1, w, pa, accumulate);
                            Assert.Equal(alone, batch.AsSpan(i * m, m).ToArray());
                        }
                    }
                }
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(raw);
            Kernels.Threads = Environment.ProcessorCount;
        }
    }

    /// <summary>x as the int8 GEMV quantizes it: int16, one scale max|x|/32767 for each row of k.</summary>
    static float[] Q16(float[] x, int k) => x.Chunk(k).SelectMany(row =>
    {
        float max = row.Max(Math.Abs), inv = max == 0 ? 0 : 32767f / max;
        return row.Select(v => MathF.Round(v * inv) * (max / 32767f));
    }).ToArray();

    /// <summary>Tensors used in place from a file start at any 8-byte offset: the GEMVs read from the boundary before, masked.</summary>
    [Theory]
    [InlineData(WeightType.F32, 8), InlineData(WeightType.F32, 24), InlineData(WeightType.F32, 60)]
    [InlineData(WeightType.BF16, 8), InlineData(WeightType.BF16, 34), InlineData(WeightType.BF16, 62)]
    [InlineData(WeightType.F32, 8, 100), InlineData(WeightType.BF16, 8, 100), InlineData(WeightType.F32, 40, 16), InlineData(WeightType.BF16, 40, 32)]
    [InlineData(WeightType.BF16, 2, 64), InlineData(WeightType.BF16, 0, 160), InlineData(WeightType.BF16, 6, 1000)]
    public void GemvOnMisalignedWeightsMatchesReference(WeightType type, int offset, int k = 96)
    {
        const int m = 37;
        var rnd = new Random(offset);
        var x = Enumerable.Range(0, k).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        var wf = Enumerable.Range(0, m * k).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        int size = type == WeightType.F32 ? 4 : 2;
        byte* raw = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(m * k * size + 64), 64);
        try
        {
            using var aligned = Weight.FromF32(wf, m, k, type);
            new Span<byte>(raw, m * k * size + 64).Fill(0xFF); // NaN around the rows: the kernels must mask it out
            Buffer.MemoryCopy(aligned.Data, raw + offset, m * k * size, m * k * size);
            using var w = Weight.InPlace(m, k, type, raw + offset);
            var stored = new float[m * k];
            for (int r = 0; r < m; r++) w.ReadRow(r, stored.AsSpan(r * k, k));
            var y = new float[m];
            Kernels.Threads = 2;
            fixed (float* px = x, py = y) Kernels.MatMul(px, 1, w, py);
            for (int r = 0; r < m; r++)
            {
                double d = 0;
                for (int j = 0; j < k; j++) d += x[j] * stored[r * k + j];
                Assert.True(Math.Abs(d - y[r]) < 1e-4 * (1 + Math.Abs(d)), $"{type} offset {offset} row {r}: {d} vs {y[r]}");
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(raw);
            Kernels.Threads = Environment.ProcessorCount;
        }
    }

    [Fact]
    public void Bf16RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, Weight.ToBF16(1f));
        Assert.Equal(0x3F80, Weight.ToBF16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie → even
        Assert.Equal(0x3F82, Weight.ToBF16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie → even (up)
        Assert.Equal(0x3F81, Weight.ToBF16(BitConverter.UInt32BitsToSingle(0x3F808001)));
    }

    [Theory]
    [InlineData(1000, false), InlineData(1000, true), InlineData(40_000, false), InlineData(40_000, true)] // one part, and spread over the threads
    public void GeluTanhMatchesTheFormula(int length, bool gated)
    {
        var rnd = new Random(length);
        var x = Enumerable.Range(0, length).Select(_ => (float)(rnd.NextDouble() * 8 - 4)).ToArray();
        var gate = Enumerable.Range(0, length).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        var y = x.ToArray();
        Kernels.Threads = 2;
        try { Kernels.GeluTanh(y, gated ? gate : default); }
        finally { Kernels.Threads = Environment.ProcessorCount; }
        for (int i = 0; i < length; i++)
        {
            double want = GeluTanh(x[i]) * (gated ? gate[i] : 1);
            // A few float roundings from the exact value (the tanh passes of TensorPrimitives were 1e-4 off).
            Assert.True(Math.Abs(want - y[i]) <= 2e-6 * Math.Abs(want) + 1e-7, $"[{i}] {want} vs {y[i]}");
        }
    }

    static double GeluTanh(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * v * (1 + 0.044715 * v * v)));

    /// <summary>Far from 0 the exp overflows or vanishes: the limits must come out as the tanh form's, in the vector and the scalar code.</summary>
    [Fact]
    public void GeluTanhAtTheExtremes()
    {
        float[] edge = [-1e30f, -1000, -100, -20, -1e-30f, 0, 1e-30f, 20, 100, 1000, 1e30f, float.PositiveInfinity, float.NegativeInfinity, float.NaN];
        var x = Enumerable.Range(0, 16 + 8 + 3).Select(i => edge[i % edge.Length]).ToArray(); // vector, half-vector and scalar lanes
        var y = x.ToArray();
        Kernels.GeluTanh(y);
        for (int i = 0; i < x.Length; i++)
        {
            double want = GeluTanh(x[i]);
            if (double.IsNaN(want)) Assert.True(float.IsNaN(y[i]), $"gelu({x[i]}) = {y[i]}, want NaN");
            else Assert.True(want == y[i] || Math.Abs(want - y[i]) <= 2e-6 * Math.Abs(want) + 1e-37, $"gelu({x[i]}) = {y[i]}, want {want}");
        }
    }

    /// <summary>Split over the threads, the argmax must still be the one of a single pass: first of equals, first NaN, +0 above -0.</summary>
    [Theory]
    [InlineData("random"), InlineData("tie across parts"), InlineData("tie in the last part"), InlineData("NaN in the last part"),
     InlineData("NaN in both parts"), InlineData("signed zeros"), InlineData("all -inf")]
    public void IndexOfMaxMatchesOnePass(string kind)
    {
        const int n = 250_112, half = n / 2;
        var rnd = new Random(kind.Length);
        var x = Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 20 - 10)).ToArray();
        switch (kind)
        {
            case "tie across parts": x[half + 7] = 50; x[half - 3] = 50; break;
            case "tie in the last part": x[n - 1] = 50; x[half + 1] = 50; break;
            case "NaN in the last part": x[half + 9] = float.NaN; x[3] = 50; break;
            case "NaN in both parts": x[half + 9] = float.NaN; x[half - 9] = float.NaN; break;
            case "signed zeros": Array.Fill(x, -1f); x[half - 5] = -0f; x[half + 5] = 0f; break;
            case "all -inf": Array.Fill(x, float.NegativeInfinity); break;
        }
        int want = System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(x);
        foreach (var threads in new[] { 1, 2, 3 })
        {
            Kernels.Threads = threads;
            try { Assert.Equal(want, Kernels.IndexOfMax(x)); }
            finally { Kernels.Threads = Environment.ProcessorCount; }
        }
    }

    /// <summary>Vectors of every length class (tails of 1-63 floats, under and over the split), with ties, NaN, infinities and zeros.</summary>
    [Fact]
    public void IndexOfMaxMatchesTensorPrimitivesOnRandomVectors()
    {
        var rnd = new Random(5);
        for (int t = 0; t < 600; t++)
        {
            int n = t % 3 == 0 ? rnd.Next(1, 200) : rnd.Next(1, 140_000);
            var x = Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 20 - 10)).ToArray();
            switch (t % 6)
            {
                case 1: for (int j = 0; j < 3; j++) x[rnd.Next(n)] = 10; break;
                case 2: x[rnd.Next(n)] = float.NaN; break;
                case 3: x[rnd.Next(n)] = t % 4 == 3 ? float.PositiveInfinity : float.NegativeInfinity; break;
                case 4: Array.Fill(x, -1f); x[rnd.Next(n)] = 0f; x[rnd.Next(n)] = -0f; break;
                case 5: for (int i = 0; i < n; i++) x[i] = MathF.Round(x[i]); break;
            }
            Kernels.Threads = 1 + t % 3;
            try { Assert.Equal(System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(x), Kernels.IndexOfMax(x)); }
            finally { Kernels.Threads = Environment.ProcessorCount; }
        }
    }

    [Fact]
    public void GeluTanhRejectsAGateOfAnotherLength() =>
        Assert.Throws<ArgumentException>(() => Kernels.GeluTanh(new float[8], new float[7]));

    /// <summary>The norms of many rows, spread over the threads, are the norms of each row alone, bit for bit, in place too.</summary>
    [Theory]
    [InlineData(1, false), InlineData(15, false), InlineData(16, false), InlineData(64, false), InlineData(64, true)]
    public void NormsOfRowsAreEachRowsNorm(int rows, bool inPlace)
    {
        const int d = 96;
        var rnd = new Random(rows);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)rnd.NextDouble() * 4 - 2).ToArray();
        float[] x = Random(rows * d), w = Random(d), b = Random(d);
        var wantRms = new float[rows * d];
        var wantLn = new float[rows * d];
        for (int i = 0; i < rows; i++)
        {
            Kernels.RmsNorm(x.AsSpan(i * d, d), w, 1e-6f, wantRms.AsSpan(i * d, d));
            Kernels.LayerNorm(x.AsSpan(i * d, d), w, b, 1e-5f, wantLn.AsSpan(i * d, d));
        }
        Kernels.Threads = 2;
        try
        {
            var rms = inPlace ? x.ToArray() : new float[rows * d];
            Kernels.RmsNorm(inPlace ? rms : x, rows, w, 1e-6f, rms);
            var ln = inPlace ? x.ToArray() : new float[rows * d];
            Kernels.LayerNorm(inPlace ? ln : x, rows, w, b, 1e-5f, ln);
            Assert.Equal(wantRms, rms);
            Assert.Equal(wantLn, ln);
        }
        finally { Kernels.Threads = Environment.ProcessorCount; }
    }

    /// <summary>
    /// Every length, whole vectors or not (the last vector overlaps the one before it and must count those elements
    /// once), with masked keys (-inf) anywhere, against a softmax in doubles.
    /// </summary>
    [Theory]
    [InlineData(1), InlineData(7), InlineData(16), InlineData(17), InlineData(31), InlineData(32), InlineData(64), InlineData(100)]
    public void SoftmaxMatchesDoubles(int n)
    {
        var rnd = new Random(n);
        var x = Enumerable.Range(0, n).Select(i => i % 5 == 3 ? float.NegativeInfinity : (float)(rnd.NextDouble() * 20 - 10)).ToArray();
        if (n == 1) x[0] = 3;
        var y = x.ToArray();
        Kernels.Softmax(y);
        double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
        for (int i = 0; i < n; i++)
        {
            double want = Math.Exp(x[i] - max) / sum;
            Assert.True(Math.Abs(want - y[i]) <= 1e-6 * want + 1e-12, $"[{i}] of {n}: {y[i]}, want {want}");
        }
    }
}
