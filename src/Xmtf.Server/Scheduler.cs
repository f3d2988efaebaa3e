using System.Diagnostics;
using System.Numerics.Tensors;
using System.Threading.Channels;
using Xmtf.Generation;

namespace Xmtf.Server;

/// <summary>One request to the <see cref="Scheduler"/>: a prompt, and N sequences to generate from it.</summary>
/// <param name="Prompt">prompt ids, as <see cref="Pipeline.EncodePrompt"/></param>
/// <param name="Options">greedy or sampling options with <see cref="GenerationOptions.MaxNewTokens"/> set</param>
/// <param name="N">independent sequences (each one row of the batch)</param>
/// <param name="TopLogprobs">most likely alternatives to report with each token (0: none)</param>
public sealed record GenerationRequest(int[] Prompt, GenerationOptions Options, int N = 1, int TopLogprobs = 0);

/// <summary>An alternative token and its log-probability under the model.</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>
/// One token as it is chosen. <paramref name="Text"/> is the text it adds to its sequence (pieces concatenate
/// to the final text; "" while a character is incomplete). <paramref name="Logprob"/> is under the model's own
/// distribution (before temperature, top-k, top-p). The last token of a sequence has its finish reason.
/// </summary>
public sealed record GeneratedToken(int Sequence, int Id, string Text, bool Special, float Logprob, TokenLogprob[] Top, string? FinishReason);

/// <summary>A submitted request: its tokens as they are chosen, then its sequences.</summary>
public sealed class Generation
{
    internal Generation(ChannelReader<GeneratedToken> tokens, Task<GeneratedText[]> result) { Tokens = tokens; Result = result; }

    /// <summary>Every token of every sequence, in the order chosen; completes when all sequences end.</summary>
    public ChannelReader<GeneratedToken> Tokens { get; }

    /// <summary>The N sequences; cancelled when the request's token is, faulted with <see cref="ApiException"/> on errors.</summary>
    public Task<GeneratedText[]> Result { get; }
}

/// <summary>
/// Continuous batching over <see cref="IGenerativeModel"/> sessions. A decoder session's rows are fixed when it
/// starts, so a batch here is one session: the requests admitted together (every queued request that fits in
/// <see cref="ServerLimits.MaxConcurrent"/>), one row per sequence. One loop thread steps every live batch once
/// per iteration, so all running requests advance together; between iterations new requests join as a new
/// batch, and finished sequences leave (their rows are padded until their whole batch ends, as in
/// <see cref="Generator"/>). A new batch's start (the mT5 encoder pass, or BLOOM's prompt pass) and its first
/// token run on the thread pool while the loop keeps decoding the others, so a long prompt does not stall them.
/// Tokens are chosen per row with <see cref="LogitsProcessors"/>, as <see cref="Generator"/> does, so a request
/// decoded alone gives exactly <see cref="Pipeline.Generate"/>'s ids.
/// </summary>
public sealed class Scheduler : IDisposable
{
    readonly Pipeline _pipeline;
    readonly ServerLimits _limits;
    readonly ServerMetrics _metrics;
    readonly Queue<Job> _queue = new();      // guarded by itself
    readonly List<Batch> _active = new();    // loop thread only
    readonly AutoResetEvent _wake = new(false);
    readonly Thread _loop;
    Task<Batch?>? _starting;                 // loop thread only
    bool _accepting = true;                  // guarded by _queue
    volatile bool _disposed;
    int _liveRows;

    /// <summary>Starts the loop thread over a loaded pipeline.</summary>
    public Scheduler(Pipeline pipeline, ServerLimits limits, ServerMetrics? metrics = null)
    {
        limits.Validate();
        _pipeline = pipeline; _limits = limits; _metrics = metrics ?? new ServerMetrics();
        _loop = new Thread(Loop) { IsBackground = true, Name = "xmtf-scheduler" };
        _loop.Start();
    }

    public Pipeline Pipeline => _pipeline;
    public ServerLimits Limits => _limits;
    public ServerMetrics Metrics => _metrics;

    /// <summary>Requests waiting to start.</summary>
    public int QueueDepth { get { lock (_queue) return _queue.Count; } }

    /// <summary>Sequences decoding now.</summary>
    public int ActiveSequences => Volatile.Read(ref _liveRows);

    /// <summary>Queues a request; throws <see cref="ApiException"/> 429 when the queue is full, 503 when stopping.</summary>
    public Generation Submit(GenerationRequest request, CancellationToken cancel = default)
    {
        if (request.Options.MaxNewTokens is not > 0) throw new ArgumentException("MaxNewTokens must be set and > 0", nameof(request));
        if (request.N < 1 || request.N > _limits.MaxConcurrent)
            throw new ApiException(422, $"n must be between 1 and {_limits.MaxConcurrent} (the server's max concurrent sequences)");
        if (request.Options.NumBeams != 1) throw new ApiException(422, "beam search is not served; use greedy or sampling");
        var job = new Job(request, cancel, _pipeline, _metrics);
        lock (_queue)
        {
            if (!_accepting || _disposed) throw new ApiException(503, "the server is shutting down");
            if (_queue.Count >= _limits.MaxQueue) throw new ApiException(429, $"too many requests: {_queue.Count} are waiting (max-queue {_limits.MaxQueue}); retry later");
            _queue.Enqueue(job);
        }
        _wake.Set();
        return job.Generation;
    }

    /// <summary>Refuses new requests (503); queued and running ones go on.</summary>
    public void StopAccepting() { lock (_queue) _accepting = false; }

    void Loop()
    {
        try
        {
            while (!_disposed)
            {
                if (_starting is { IsCompleted: true } started)
                {
                    _starting = null;
                    if (started.Result is { } b) _active.Add(b);
                }
                _starting ??= Admit();
                if (_active.Count == 0) { _wake.WaitOne(); continue; }
                foreach (var b in _active) Step(b);
                _active.RemoveAll(b => b.Done && Release(b));
            }
        }
        finally
        {
            var shutdown = new ApiException(503, "the server is shutting down");
            _starting?.Wait();
            if (_starting?.Result is { } b) _active.Add(b);
            foreach (var a in _active) { foreach (var r in a.Rows) r.Job.Complete(shutdown); Release(a); }
            lock (_queue) while (_queue.TryDequeue(out var j)) j.Complete(shutdown);
        }
    }

    /// <summary>Takes the queued requests that fit and starts them as one batch on the thread pool.</summary>
    Task<Batch?>? Admit()
    {
        var jobs = new List<Job>();
        lock (_queue)
            while (_queue.TryPeek(out var j) && (j.Cancel.IsCancellationRequested || _liveRows + j.Request.N <= _limits.MaxConcurrent))
            {
                _queue.Dequeue();
                if (j.Cancel.IsCancellationRequested) { j.Complete(); continue; }
                Interlocked.Add(ref _liveRows, j.Request.N);
                jobs.Add(j);
            }
        if (jobs.Count == 0) return null;
        var task = Task.Run(() => Start(jobs));
        task.ContinueWith(_ => _wake.Set(), TaskScheduler.Default);
        return task;
    }

    Batch? Start(List<Job> jobs)
    {
        IDecoderSession? session = null;
        try
        {
            var prompts = jobs.SelectMany(j => Enumerable.Repeat(j.Request.Prompt, j.Request.N)).ToList();
            session = _pipeline.Model.Start(prompts, 1, jobs.Max(j => j.Request.Options.MaxNewTokens!.Value));
            var s = session;
            int row = 0;
            var rows = jobs.SelectMany(j => Enumerable.Range(0, j.Request.N).Select(seq => new Row(j, seq, s.StartIds(row++), new TextStream(_pipeline))));
            var batch = new Batch(session, rows.ToArray(), _pipeline.Model.VocabSize);
            Choose(batch, session.Prefill());
            return batch;
        }
        catch (Exception e)
        {
            session?.Dispose();
            foreach (var j in jobs) { Interlocked.Add(ref _liveRows, -j.Request.N); j.Complete(Error(e)); }
            return null;
        }
    }

    void Step(Batch b)
    {
        try { Choose(b, b.Session.Step(b.Tokens)); }
        catch (Exception e)
        {
            foreach (var r in b.Rows.Where(r => r.Reason is null)) { r.Job.Complete(Error(e)); Finish(r, "error"); }
        }
    }

    /// <summary>Picks each live row's next token from its logits, emits it, and ends rows that are done.</summary>
    void Choose(Batch b, ReadOnlySpan<float> logits)
    {
        var d = _pipeline.Model.Defaults;
        int vocab = b.Vocab;
        int emitted = 0;
        for (int r = 0; r < b.Rows.Length; r++)
        {
            var row = b.Rows[r];
            if (row.Reason is null && row.Job.Cancel.IsCancellationRequested) Finish(row, "cancelled");
            if (row.Reason is not null) { b.Tokens[r] = d.PadTokenId; continue; }
            var o = row.Job.Request.Options;
            var raw = logits.Slice(r * vocab, vocab);
            int token = LogitsProcessors.NextToken(raw, b.Scratch, row.History, b.Steps, o, d, row.Job.Rng);
            b.Tokens[r] = token;
            row.History.Add(token);
            row.Generated.Add(token);
            var piece = row.Text.Add(token);
            string? reason = d.EosTokenIds.Contains(token) ? "eos"
                : o.StopStrings.Any(s => row.Text.Text.Contains(s, StringComparison.Ordinal)) ? "stop"
                : row.Generated.Count >= o.MaxNewTokens ? "length" : null;
            if (reason is not null) piece += row.Text.Flush();
            float lse = LogSumExp(raw);
            bool special = d.EosTokenIds.Contains(token) || token == d.PadTokenId || token >= _pipeline.Tokenizer.VocabSize;
            row.Job.Emit(new GeneratedToken(row.Seq, token, piece, special, raw[token] - lse, Top(raw, row.Job.Request.TopLogprobs, lse), reason));
            emitted++;
            if (reason is not null) Finish(row, reason);
        }
        b.Steps++;
        _metrics.Tokens(emitted);
    }

    void Finish(Row row, string reason)
    {
        row.Reason = reason;
        Interlocked.Decrement(ref _liveRows);
        row.Job.Finish(row.Seq, new GeneratedText(_pipeline.Decode(row.Generated.ToArray()), row.Generated.ToArray(), reason, null));
    }

    // Engine errors on a request's input (an id outside the vocabulary) are the client's: 422.
    static Exception Error(Exception e) => e switch
    {
        ApiException => e,
        XmtfException => new ApiException(422, e.Message),
        _ => e,
    };

    static bool Release(Batch b) { b.Session.Dispose(); return true; }

    static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = TensorPrimitives.Max(x);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        return max + (float)Math.Log(sum);
    }

    /// <summary>The k largest logits as log-probs, best first.</summary>
    static TokenLogprob[] Top(ReadOnlySpan<float> raw, int k, float lse)
    {
        if (k <= 0) return [];
        var best = new List<TokenLogprob>(k + 1);
        for (int i = 0; i < raw.Length; i++)
        {
            float v = raw[i];
            if (best.Count == k && v <= best[^1].Logprob) continue;
            int pos = best.FindIndex(t => t.Logprob < v);
            best.Insert(pos < 0 ? best.Count : pos, new TokenLogprob(i, v));
            if (best.Count > k) best.RemoveAt(k);
        }
        return best.Select(t => t with { Logprob = t.Logprob - lse }).ToArray();
    }

    /// <summary>Stops the loop; requests still queued or running fail with 503.</summary>
    public void Dispose()
    {
        lock (_queue) { _accepting = false; _disposed = true; }
        _wake.Set();
        _loop.Join();
        // _wake is left to the finalizer: a starting batch's continuation may still signal it.
    }

    sealed class Batch(IDecoderSession session, Row[] rows, int vocab)
    {
        public IDecoderSession Session { get; } = session;
        public Row[] Rows { get; } = rows;
        public int Vocab { get; } = vocab;
        public int[] Tokens { get; } = new int[rows.Length];
        public float[] Scratch { get; } = new float[vocab];
        public int Steps { get; set; }
        public bool Done => Rows.All(r => r.Reason is not null);
    }

    sealed class Row(Job job, int seq, int[] startIds, TextStream text)
    {
        public Job Job { get; } = job;
        public int Seq { get; } = seq;
        public List<int> History { get; } = new(startIds);
        public List<int> Generated { get; } = new();
        public TextStream Text { get; } = text;
        public string? Reason { get; set; }
    }

    /// <summary>A request's channel and results; rows of a job are finished by one thread at a time.</summary>
    sealed class Job
    {
        readonly Channel<GeneratedToken> _tokens = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true });
        readonly TaskCompletionSource<GeneratedText[]> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly GeneratedText[] _done;
        readonly ServerMetrics _metrics;
        readonly long _started = Stopwatch.GetTimestamp();
        long _firstToken;
        int _remaining;

        public Job(GenerationRequest request, CancellationToken cancel, Pipeline pipeline, ServerMetrics metrics)
        {
            Request = request; Cancel = cancel; _metrics = metrics;
            _done = new GeneratedText[request.N];
            _remaining = request.N;
            Rng = LogitsProcessors.Rng(request.Options);
            Generation = new Generation(_tokens.Reader, _result.Task);
        }

        public GenerationRequest Request { get; }
        public CancellationToken Cancel { get; }
        public Random Rng { get; }
        public Generation Generation { get; }

        public void Emit(GeneratedToken t)
        {
            if (_firstToken == 0) _firstToken = Stopwatch.GetTimestamp();
            _tokens.Writer.TryWrite(t);
        }

        public void Finish(int seq, GeneratedText text)
        {
            _done[seq] = text;
            if (Interlocked.Decrement(ref _remaining) == 0) Complete();
        }

        /// <summary>Ends the request: with its sequences, cancelled, or with an error.</summary>
        public void Complete(Exception? error = null)
        {
            if (error is null && Cancel.IsCancellationRequested) error = new OperationCanceledException(Cancel);
            if (!_tokens.Writer.TryComplete(error)) return;
            var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
            _metrics.Completed(error is null ? "ok" : error is OperationCanceledException ? "cancelled" : "error", seconds,
                _firstToken == 0 ? null : Stopwatch.GetElapsedTime(_started, _firstToken).TotalSeconds);
            if (error is OperationCanceledException) _result.TrySetCanceled(Cancel);
            else if (error is not null) _result.TrySetException(error);
            else _result.TrySetResult(_done);
        }
    }
}
