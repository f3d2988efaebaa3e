namespace Xmtf.Tensors;

/// <summary>
/// A fork-join pool for the kernels, in the way of ggml's thread pool: the caller works too, idle workers
/// spin briefly before they sleep, so the ~100 small parallel loops of one decode step cost microseconds
/// to start instead of the thread pool's tens. A second caller arriving while the pool is busy (the
/// server runs batches side by side) uses <see cref="Parallel.For(int, int, Action{int})"/> instead.
/// </summary>
static class WorkerPool
{
    static readonly object Gate = new();
    static Worker[] _workers = [];
    static Action<int>? _body;
    static int _count, _next, _pending;
    static long _generation;
    static readonly ManualResetEventSlim Wake = new(false);

    sealed class Worker
    {
        public readonly Thread Thread;
        public volatile bool Stop;
        /// <param name="seen">the generation already done when the worker is made (the next one is its first job)</param>
        public Worker(Action<Worker, long> run, long seen)
        {
            Thread = new Thread(() => run(this, seen)) { IsBackground = true, Name = "xmtf-kernel" };
            Thread.Start();
        }
    }

    /// <summary>Runs body(i) for every i in [0, count) on <paramref name="threads"/> threads, the caller included.</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1) { for (int i = 0; i < count; i++) body(i); return; }
        if (!Monitor.TryEnter(Gate))
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            Resize(threads - 1);
            _body = body;
            _count = count;
            _next = 0;
            _pending = _workers.Length;
            Interlocked.Increment(ref _generation);
            Wake.Set();
            Drain(body);
            // The others finish within microseconds: pause-spin, never yield (a syscall costs more in a VM).
            while (Volatile.Read(ref _pending) > 0) Thread.SpinWait(16);
            Wake.Reset();
            _body = null;
        }
        finally { Monitor.Exit(Gate); }
    }

    static void Drain(Action<int> body)
    {
        for (int i; (i = Interlocked.Increment(ref _next) - 1) < _count;) body(i);
    }

    static void Resize(int n)
    {
        if (_workers.Length == n) return;
        foreach (var w in _workers) w.Stop = true;
        Wake.Set();
        long now = Volatile.Read(ref _generation);
        _workers = Enumerable.Range(0, n).Select(_ => new Worker(Run, now)).ToArray();
    }

    static void Run(Worker self, long seen)
    {
        while (!self.Stop)
        {
            // Spin on pause instructions for about a millisecond (the next kernel of the same step usually
            // follows within microseconds), then sleep until For wakes us.
            for (int spins = 0; Volatile.Read(ref _generation) == seen && !self.Stop;)
                if (++spins < 2000) Thread.SpinWait(16);
                else Wake.Wait(100);
            if (self.Stop) return;
            seen = Volatile.Read(ref _generation);
            if (_body is { } body) Drain(body);
            Interlocked.Decrement(ref _pending);
        }
    }
}
