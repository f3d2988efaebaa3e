using Xmtf.Generation;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;

namespace Xmtf.Tests.Models;

/// <summary>A decode step allocates nothing on the calling thread: caches, scratch and kernel jobs are made once.</summary>
public class DecodeStepAllocationTests
{
    [Theory]
    [InlineData("tiny-mt5"), InlineData("tiny-bloom")]
    public void AStepAllocatesNothing(string fixture)
    {
        var dir = Fixtures.Path(fixture);
        IGenerativeModel model = fixture.Contains("bloom") ? BloomModel.Load(dir) : MT5Model.Load(dir);
        using var session = model.Start([[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]], 1, 64);
        session.Prefill();
        int[] token = [7];
        for (int i = 0; i < 3; i++) session.Step(token); // first calls make the thread's buffers and jobs
        // When another test holds the kernels' pool, a loop runs on Parallel.For, which allocates: the least
        // over several steps is the step's own.
        long least = long.MaxValue;
        for (int i = 0; i < 40 && least > 0; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            session.Step(token);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, least);
    }
}
