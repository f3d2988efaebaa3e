namespace Xmtf.Tensors;

/// <summary>
/// A fork-join pool for the kernels, in the way of ggml's thread pool: the caller works too, idle workers
/// spin briefly before they sleep, so the ~100 small parallel loops of one decode step cost microseconds
/// to start instead of the thread pool's tens. A second caller arriving while the pool is busy (the
/// server runs batches side by side) uses <see cref="Parallel.For(int, int, Action{int})"/> instead.
/// <para>
/// Each thread owns a contiguous part of the index range and runs it front to back, so a GEMV's thread
/// reads its weight rows as one sequential stream; a thread done with its own part takes items from the
/// back of the others' (see <see cref="Take"/> for how many at a time). Handing items out in turn instead made every item a new stream, and the small
/// matrices of a decode step read at 60% of the bandwidth.
/// </para>
/// </summary>
static class WorkerPool
{
    static readonly object Gate = new();
    static Worker[] _workers = [];
    static Action<int>? _body;
    static int _parts, _joined, _pending;
    static Exception? _error;
    // Part p's remaining items [front, back) packed as front << 32 | back, one cache line per part.
    static long[] _ranges = [];
    const int Stride = 8;
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
            // Same contract as the pool's own path: the body's exception itself, not an AggregateException.
            try { Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body); }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
            }
            return;
        }
        try
        {
            if (_workers.Length != threads - 1) Resize(threads - 1);
            _body = body;
            _parts = Math.Min(threads, count);
            if (_ranges.Length < _parts * Stride) _ranges = new long[_parts * Stride];
            for (int p = 0; p < _parts; p++)
                _ranges[p * Stride] = (long)count * p / _parts << 32 | (uint)((long)count * (p + 1) / _parts);
            _joined = 0;
            _pending = _workers.Length;
            _error = null;
            Interlocked.Increment(ref _generation);
            Wake.Set();
            try { Drain(body); }
            finally
            {
                // Even when the body threw: the workers must be done with this loop before the next one starts.
                // They finish within microseconds: pause-spin, never yield (a syscall costs more in a VM).
                while (Volatile.Read(ref _pending) > 0) Thread.SpinWait(16);
                Wake.Reset();
                _body = null;
            }
            if (_error is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
        finally { Monitor.Exit(Gate); }
    }

    /// <summary>Runs the next part's items front to back, then takes the other parts' last items until none are left.</summary>
    static void Drain(Action<int> body)
    {
        int parts = _parts, own = Interlocked.Increment(ref _joined) - 1;
        if (own < parts)
            for (int from, to; (to = Take(own, fromBack: false, out from)) > from;)
                for (int i = from; i < to; i++) body(i);
        for (int p = 1; p < parts; p++)
            for (int from, to, q = (own + p) % parts; (to = Take(q, fromBack: true, out from)) > from;)
                for (int i = from; i < to; i++) body(i);
    }

    /// <summary>
    /// Claims a run [from, returned) of part p's remaining items: the owner a quarter of them from the front, a
    /// thief half from the back, at least one (an empty run when none are left). Claims shrink as the part
    /// empties, so the threads finish together, yet an owner claims only a few dozen times per loop: each
    /// claim is a locked instruction, a full fence that waits for the GEMV's outstanding loads, and claiming
    /// items one by one cost 200 ns each (a 64 KB item: 10%).
    /// </summary>
    static int Take(int p, bool fromBack, out int from)
    {
        ref long range = ref _ranges[p * Stride];
        while (true)
        {
            long r = Volatile.Read(ref range);
            int front = (int)(r >> 32), back = (int)r;
            if (front >= back) { from = 0; return 0; }
            int size = Math.Max(1, (back - front) / (fromBack ? 2 : 4));
            long next = fromBack ? (long)front << 32 | (uint)(back - size) : (long)(front + size) << 32 | (uint)back;
            if (Interlocked.CompareExchange(ref range, next, r) == r)
            {
                from = fromBack ? back - size : front;
                return from + size;
            }
        }
    }

    // Called only when the count changes: the lambda's closure over `now` is allocated on every entry to this
    // method, and an early return inside it cost 24 bytes per loop.
    static void Resize(int n)
    {
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
            try
            {
                if (_body is { } body) Drain(body);
            }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); } // rethrown by the caller
            finally { Interlocked.Decrement(ref _pending); }
        }
    }
}
