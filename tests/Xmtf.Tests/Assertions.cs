using System.Text.Json;

namespace Xmtf.Tests;

static class Golden
{
    public static int[] Ints(this JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    public static float[] Floats(this JsonElement e) => e.EnumerateArray().Select(x => x.GetSingle()).ToArray();

    /// <summary>Fails with the worst element when |a - e| > atol + rtol * |e| anywhere; returns the worst abs error.</summary>
    public static double AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol = 1e-4, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]);
            double excess = err - tol * (1 + Math.Abs(expected[i]));
            if (err > worst) { worst = err; }
            if (excess > 0 && at < 0) at = i;
        }
        Assert.True(at < 0, $"{what}: element {at}: expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)} (worst abs error {worst:E2})");
        return worst;
    }
}
