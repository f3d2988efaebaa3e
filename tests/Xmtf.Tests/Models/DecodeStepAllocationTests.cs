using Xmtf.Generation;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;

namespace Xmtf.Tests.Models;

/// <summary>Tests that run alone: while another test's kernels hold the pool, a parallel loop falls back to Parallel.For, which allocates.</summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public class RunsAlone;

/// <summary>A decode step allocates nothing on the calling thread: caches, scratch and kernel jobs are made once.</summary>
[Collection(nameof(RunsAlone))]
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
        long least = long.MaxValue; // the least over a few steps, should a finished test's work still hold the pool
        for (int i = 0; i < 10 && least > 0; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            session.Step(token);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, least);
    }
}
