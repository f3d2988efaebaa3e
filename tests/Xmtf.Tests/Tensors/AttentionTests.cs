using Xmtf.Tensors;

namespace Xmtf.Tests.Tensors;

/// <summary>Attention.Compute against a plain softmax(q·k * scale + bias)·v, over head sizes that take each path.</summary>
public class AttentionTests
{
    [Theory]
    [InlineData(1, 16, false), InlineData(12, 16, true), InlineData(12, 64, true), InlineData(1, 64, false),
     InlineData(9, 80, true), InlineData(3, 128, false), InlineData(10, 7, true)]
    public void MatchesTheDefinition(int queries, int headDim, bool masked)
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
        Attention.Compute(q, queries, seqs, k, v, heads, headDim, r => r * keys, (_, i) => Count(i), r => mask[r],
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
        Attention.Compute(new float[headDim], 1, 1, new float[4 * headDim], Enumerable.Repeat(1f, 4 * headDim).ToArray(), 1, headDim,
            _ => 0, (_, _) => 4, _ => new bool[4], null, 1f, ctx);
        Assert.All(ctx, c => Assert.Equal(0f, c));
    }
}
