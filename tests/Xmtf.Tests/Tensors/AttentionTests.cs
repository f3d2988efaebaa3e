using Xmtf.Tensors;

namespace Xmtf.Tests.Tensors;

/// <summary>Attention.Compute against a plain softmax(q·k * scale + bias)·v, over head sizes that take each path.</summary>
public class AttentionTests
{
    [Theory]
    [InlineData(1, 16, false, false), InlineData(12, 16, true, false), InlineData(12, 64, true, false), InlineData(1, 64, false, false),
     InlineData(9, 80, true, false), InlineData(3, 128, false, false), InlineData(10, 7, true, false),
     InlineData(1, 64, true, true), InlineData(12, 64, false, true), InlineData(10, 7, true, true), InlineData(3, 80, false, true)]
    public void MatchesTheDefinition(int queries, int headDim, bool masked, bool headMajor)
    {
        const int seqs = 2, heads = 3, keys = 21;
        int width = heads * headDim;
        var rnd = new Random(queries * 1000 + headDim);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)rnd.NextDouble() * 2 - 1).ToArray();
        var q = Rand(seqs * queries * width);
        var k = Rand(seqs * keys * width);
        var v = Rand(seqs * keys * width);
        // Sequence 1 masks every third key; causal-style counts: query i sees keys [0, keys - queries + i].
        bool[][] mask = [Enumerable.Repeat(true, keys).ToArray(), Enumerable.Range(0, keys).Select(j => !masked || j % 3 != 1).ToArray()];
        int Count(int i) => keys - queries + 1 + i;
        float Bias(int h, int i, int j) => 0.1f * h - 0.05f * Math.Abs(i - j);
        const float scale = 0.37f;
        var ctx = new float[seqs * queries * width];
        var layout = KvLayout.RowMajor(r => r * keys, heads, headDim);
        var (kc, vc) = (k, v);
        if (headMajor)
        {
            // The same keys and values in a cache with room for more positions than are filled.
            var cache = new KvCache(1, seqs, heads, keys + 5, headDim);
            for (int r = 0; r < seqs; r++)
                for (int j = 0; j < keys; j++) cache.Write(0, r, j, k.AsSpan((r * keys + j) * width), v.AsSpan((r * keys + j) * width), headDim);
            (layout, kc, vc) = (cache.Layout, cache.K(0), cache.V(0));
        }
        Attention.Compute(q, queries, seqs, kc, vc, layout, heads, headDim, (_, i) => Count(i), r => mask[r],
            (_, h, i, s) => { for (int j = 0; j < s.Length; j++) s[j] += Bias(h, i, j); }, scale, ctx);

        for (int r = 0; r < seqs; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < queries; i++)
                {
                    int n = Count(i);
                    var s = new double[n];
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++) dot += q[((r * queries + i) * width) + h * headDim + d] * k[((r * keys + j) * width) + h * headDim + d];
                        s[j] = mask[r][j] ? dot * scale + Bias(h, i, j) : double.NegativeInfinity;
                    }
                    double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                    for (int d = 0; d < headDim; d++)
                    {
                        double want = 0;
                        for (int j = 0; j < n; j++) want += Math.Exp(s[j] - max) / sum * v[((r * keys + j) * width) + h * headDim + d];
                        Assert.Equal(want, ctx[((r * queries + i) * width) + h * headDim + d], 1e-5);
                    }
                }
    }

    [Fact]
    public void AQueryWithEveryKeyMaskedGetsZeros()
    {
        const int headDim = 64;
        var ctx = Enumerable.Repeat(float.NaN, headDim).ToArray();
        Attention.Compute(new float[headDim], 1, 1, new float[4 * headDim], Enumerable.Repeat(1f, 4 * headDim).ToArray(),
            KvLayout.RowMajor(_ => 0, 1, headDim), 1, headDim, (_, _) => 4, _ => new bool[4], null, 1f, ctx);
        Assert.All(ctx, c => Assert.Equal(0f, c));
    }

    [Fact]
    public void QueriesInGroupsOfFourWhereSomeSeeOnlyMaskedKeys()
    {
        // Left padding of 5 keys, causal counts (query i sees keys 0..i): queries 0-4 attend to nothing and get
        // zeros; the group of queries 4-7 mixes both kinds; 8-11 are a whole group.
        const int queries = 12, headDim = 64, heads = 2, width = heads * headDim, pad = 5;
        var rnd = new Random(7);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)rnd.NextDouble() * 2 - 1).ToArray();
        var (q, k, v) = (Rand(queries * width), Rand(queries * width), Rand(queries * width));
        var mask = Enumerable.Range(0, queries).Select(j => j >= pad).ToArray();
        var ctx = Enumerable.Repeat(float.NaN, queries * width).ToArray();
        Attention.Compute(q, queries, 1, k, v, KvLayout.RowMajor(_ => 0, heads, headDim), heads, headDim, (_, i) => i + 1, _ => mask, null, 0.5f, ctx);
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < queries; i++)
            {
                var s = Enumerable.Range(0, i + 1).Select(j => mask[j]
                    ? 0.5 * Enumerable.Range(0, headDim).Sum(d => (double)q[i * width + h * headDim + d] * k[j * width + h * headDim + d])
                    : double.NegativeInfinity).ToArray();
                double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                for (int d = 0; d < headDim; d++)
                {
                    double want = i < pad ? 0 : Enumerable.Range(0, i + 1).Sum(j => Math.Exp(s[j] - max) / sum * v[j * width + h * headDim + d]);
                    Assert.Equal(want, ctx[i * width + h * headDim + d], 1e-5);
                }
            }
    }
}

public class KvCacheTests
{
    [Fact]
    public void ReorderCopiesEachRowsFilledPositionsFromItsSource()
    {
        const int rows = 3, heads = 2, capacity = 4, headDim = 3, length = 2;
        var cache = new KvCache(1, rows, heads, capacity, headDim);
        // Key (row, position, head, d) = 1000 row + 100 position + 10 head + d; value the negative.
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < length; p++)
            {
                var k = Enumerable.Range(0, heads * headDim).Select(i => 1000f * r + 100 * p + 10 * (i / headDim) + i % headDim).ToArray();
                cache.Write(0, r, p, k, k.Select(x => -x).ToArray(), headDim);
            }
        cache.Reorder([2, 0, 2], length);
        int[] source = [2, 0, 2];
        var layout = cache.Layout;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int p = 0; p < length; p++)
                    for (int d = 0; d < headDim; d++)
                    {
                        int at = layout.Start(r) + h * layout.HeadStride + p * layout.RowStride + d;
                        Assert.Equal(1000f * source[r] + 100 * p + 10 * h + d, cache.K(0)[at]);
                        Assert.Equal(-(1000f * source[r] + 100 * p + 10 * h + d), cache.V(0)[at]);
                    }
    }

    [Fact]
    public void WritingPastTheCapacityThrows() =>
        Assert.Throws<InvalidOperationException>(() => new KvCache(1, 1, 1, 2, 4).Write(0, 0, 2, new float[4], new float[4], 4));
}
