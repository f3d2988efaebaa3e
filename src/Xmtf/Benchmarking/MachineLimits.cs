using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Xmtf.Benchmarking;

/// <summary>
/// The two limits a kernel can reach on this machine, measured rather than looked up: memory read bandwidth
/// (decoding streams every weight once per token) and fp32 FMA throughput (the encoder is matrix-matrix work).
/// </summary>
public static unsafe class MachineLimits
{
    /// <summary>
    /// Read bandwidth in GB/s (1e9 bytes) of <paramref name="threads"/> threads reading the given regions
    /// <paramref name="passes"/> times over (in chunks, through the kernels' pool, as the GEMVs read): total bytes
    /// over total time. The bench passes the weights a decode step reads, once per step it timed: the same
    /// memory, as many times, over about as long. In this VM a fresh buffer read 10-30% slower than
    /// long-resident weights, and a short best-of probe catches bursts that a whole decode run never sees.
    /// </summary>
    public static double ReadBandwidthGBps(int threads, IReadOnlyList<(nint Start, long Bytes)> regions, int passes)
    {
        // Pieces of at most 2 MB, so that the threads end a pass together: a thread's claimed run cannot be taken
        // back (see WorkerPool). With a sixteenth of each region a piece, the lm_head's were 32-64 MB, a thread that
        // had claimed the last of them read them alone while the other waited, and fp32 decoding came out at
        // 1.02-1.16 of the "limit": in paired rounds these pieces read mt0-large fp32's weights 1.34x as fast
        // (quartiles 1.00-1.75), mt0-small fp32's 1.09x, mt0-small bf16's 1.01x.
        var pieces = new List<(nint Start, long Bytes)>();
        foreach (var (start, bytes) in regions)
        {
            long count = Math.Max(1, (bytes + ProbePiece - 1) / ProbePiece);
            for (long c = 0; c < count; c++)
            {
                // From a 64-byte boundary, as the GEMVs read (in-place tensors start at any 8-byte offset);
                // the few bytes before it are left out of the count too.
                long from = bytes * c / count, to = bytes * (c + 1) / count;
                long skip = (64 - ((long)(start + (nint)from) & 63)) & 63;
                if (to - from > skip) pieces.Add((start + (nint)(from + skip), to - from - skip));
            }
        }
        long total = pieces.Sum(p => p.Bytes / sizeof(float) * sizeof(float));
        var sums = new float[pieces.Count]; // kept so the reads cannot be optimized away
        var x = (float*)NativeMemory.AlignedAlloc(ProbeVector * sizeof(float), 64);
        new Span<float>(x, ProbeVector).Fill(1e-3f);
        var sw = Stopwatch.StartNew();
        for (int r = 0; r < passes; r++)
            // The kernels' own pool, so the probe's threads behave as the GEMV's do.
            Tensors.WorkerPool.For(pieces.Count, threads, i => sums[i] += Read((float*)pieces[i].Start, pieces[i].Bytes / sizeof(float), x));
        double seconds = sw.Elapsed.TotalSeconds;
        NativeMemory.AlignedFree(x);
        return (double)total * passes / seconds / 1e9;
    }

    /// <summary>
    /// Reads n floats front to back as rows of <see cref="ProbeVector"/> floats, each row's dot product with x by the
    /// fp32 GEMV's own row kernel (aligned vectors, four accumulators, lines asked for 4 KB ahead). A single loop
    /// whose four FMA chains ran the whole piece read 10-45% slower than the GEMVs in this VM's fast minutes (one
    /// late load holds every later FMA of its chain, and the loads queued behind them): fp32 decode runs came out
    /// at up to 1.4 of that "limit". Pure-add loops streamed slower still.
    /// </summary>
    static float Read(float* p, long n, float* x)
    {
        long rows = n / ProbeVector, i = rows * ProbeVector;
        float s = Tensors.Kernels.DotRows(p, rows, ProbeVector, x);
        for (; i < n; i++) s += p[i] * x[i & (ProbeVector - 1)];
        return s;
    }

    const int ProbeVector = 1024; // floats, a power of two
    const long ProbePiece = 2 << 20;

    /// <summary>
    /// Peak fp32 GFLOP/s of <paramref name="threads"/> threads running independent FMA chains in registers, at
    /// the vector width the kernels use (<see cref="Vector512"/> when accelerated, else <see cref="Vector{T}"/>).
    /// </summary>
    public static double FmaPeakGflops(int threads, long iterations = 20_000_000, int repeats = 3)
    {
        bool wide = Vector512.IsHardwareAccelerated;
        int lanes = wide ? Vector512<float>.Count : Vector<float>.Count;
        var sink = new float[threads];
        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
            best = Math.Min(best, OnThreads(threads, t => sink[t] = wide ? Fma512(iterations) : FmaVector(iterations)));
        return threads * iterations * Chains * lanes * 2 / best / 1e9;
    }

    // Enough independent chains to cover FMA latency (4-5 cycles) on two FMA ports.
    const int Chains = 12;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // timed once per thread: no tier-0 code
    static float Fma512(long iterations)
    {
        var m = Vector512.Create(0.999999f); var c = Vector512.Create(1e-6f);
        Vector512<float> a0 = c, a1 = c, a2 = c, a3 = c, a4 = c, a5 = c, a6 = c, a7 = c, a8 = c, a9 = c, a10 = c, a11 = c;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c); a2 = Vector512.FusedMultiplyAdd(a2, m, c);
            a3 = Vector512.FusedMultiplyAdd(a3, m, c); a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c); a8 = Vector512.FusedMultiplyAdd(a8, m, c);
            a9 = Vector512.FusedMultiplyAdd(a9, m, c); a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float FmaVector(long iterations)
    {
        var m = new Vector<float>(0.999999f); var c = new Vector<float>(1e-6f);
        Vector<float> a0 = c, a1 = c, a2 = c, a3 = c, a4 = c, a5 = c, a6 = c, a7 = c, a8 = c, a9 = c, a10 = c, a11 = c;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector.FusedMultiplyAdd(a0, m, c); a1 = Vector.FusedMultiplyAdd(a1, m, c); a2 = Vector.FusedMultiplyAdd(a2, m, c);
            a3 = Vector.FusedMultiplyAdd(a3, m, c); a4 = Vector.FusedMultiplyAdd(a4, m, c); a5 = Vector.FusedMultiplyAdd(a5, m, c);
            a6 = Vector.FusedMultiplyAdd(a6, m, c); a7 = Vector.FusedMultiplyAdd(a7, m, c); a8 = Vector.FusedMultiplyAdd(a8, m, c);
            a9 = Vector.FusedMultiplyAdd(a9, m, c); a10 = Vector.FusedMultiplyAdd(a10, m, c); a11 = Vector.FusedMultiplyAdd(a11, m, c);
        }
        return Vector.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    /// <summary>
    /// Runs body(0..threads-1) on dedicated threads, all at once (the thread pool may hold some back), and
    /// returns the seconds until the last one finished.
    /// </summary>
    static double OnThreads(int threads, Action<int> body)
    {
        var all = Enumerable.Range(0, threads).Select(t => new Thread(() => body(t))).ToArray();
        var sw = Stopwatch.StartNew();
        foreach (var t in all) t.Start();
        foreach (var t in all) t.Join();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Starts the peak resident set afresh (Linux: "5" to /proc/self/clear_refs), so that it counts what runs
    /// from now on, not what this process did before (writing a --config model). Elsewhere the peak stays whole.
    /// </summary>
    public static void ResetPeakRss()
    {
        try { if (OperatingSystem.IsLinux()) File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Peak resident set of this process in bytes (VmHWM on Linux).</summary>
    public static long PeakRssBytes()
    {
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }
}
