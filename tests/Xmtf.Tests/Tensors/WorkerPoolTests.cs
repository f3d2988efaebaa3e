using Xmtf.Tensors;

namespace Xmtf.Tests.Tensors;

public class WorkerPoolTests
{
    /// <summary>Every index runs exactly once, whatever the split into parts and however the stealing goes.</summary>
    [Theory]
    [InlineData(1, 2), InlineData(2, 2), InlineData(3, 2), InlineData(17, 2), InlineData(1000, 2), InlineData(5, 4), InlineData(999, 3), InlineData(7, 1)]
    public void ForRunsEachIndexOnce(int count, int threads)
    {
        for (int round = 0; round < 20; round++)
        {
            var hits = new int[count];
            // Uneven items, so that threads finish their parts at different times and take from the others.
            WorkerPool.For(count, threads, i =>
            {
                Interlocked.Increment(ref hits[i]);
                if (i % 3 == round % 3) Thread.SpinWait(200);
            });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void ConcurrentCallersEachGetTheirWorkDone()
    {
        var totals = new long[4];
        Parallel.For(0, 4, c =>
        {
            for (int round = 0; round < 50; round++)
                WorkerPool.For(100, 2, i => Interlocked.Add(ref totals[c], i));
        });
        Assert.All(totals, t => Assert.Equal(50L * 4950, t));
    }

    /// <summary>A body that throws on a worker reaches the caller, and the pool stays usable.</summary>
    [Fact]
    public void ExceptionsReachTheCaller()
    {
        for (int round = 0; round < 20; round++)
        {
            var e = Assert.Throws<InvalidOperationException>(() => WorkerPool.For(64, 2, i =>
            {
                Thread.SpinWait(100);
                if (i == 63 - round % 2 * 63) throw new InvalidOperationException("item " + i);
            }));
            Assert.StartsWith("item", e.Message);
        }
        int sum = 0;
        WorkerPool.For(100, 2, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    /// <summary>A second caller while the pool is busy runs on Parallel.For and still gets the body's exception itself.</summary>
    [Fact]
    public void ExceptionsReachASecondCallerUnwrapped()
    {
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var busy = Task.Run(() => WorkerPool.For(2, 2, _ => { started.Set(); release.Wait(); }));
        try
        {
            started.Wait();
            var e = Assert.Throws<InvalidOperationException>(() =>
                WorkerPool.For(8, 2, i => { if (i == 5) throw new InvalidOperationException("item " + i); }));
            Assert.Equal("item 5", e.Message);
        }
        finally { release.Set(); busy.Wait(); }
    }
}
