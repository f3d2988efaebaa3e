using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Xmtf.Generation;

/// <summary>One generated sequence: the new tokens (eos included when generated) and why it ended.</summary>
public sealed record GeneratedSequence(int[] Tokens, string FinishReason, double? Score = null);

/// <summary>
/// Greedy, sampling and beam search over any <see cref="IGenerativeModel"/>, following transformers 4.43's
/// <c>generate()</c> step for step (logits processors, beam hypotheses and their scores, padding of
/// finished rows), so that ids match exactly.
/// </summary>
public static class Generator
{
    /// <summary>Called after each step with (row, token); return true to end that row (stop strings).</summary>
    public delegate bool TokenCallback(int row, int token);

    /// <summary>
    /// Generates for a batch of prompts. result[p] holds NumReturnSequences sequences of prompt p.
    /// <paramref name="onToken"/> sees every token as it is chosen (greedy and sampling; beam search
    /// only knows its tokens at the end) and may end a row.
    /// </summary>
    public static GeneratedSequence[][] Generate(IGenerativeModel model, IReadOnlyList<int[]> prompts, GenerationOptions options,
        TokenCallback? onToken = null, CancellationToken cancel = default)
    {
        options.Validate();
        if (prompts.Count == 0) return [];
        return options.NumBeams > 1
            ? BeamSearch(model, prompts, options, cancel)
            : Sample(model, prompts, options, onToken, cancel);
    }

    /// <summary>Streams the tokens of one prompt as they are generated (greedy or sampling).</summary>
    public static async IAsyncEnumerable<int> StreamAsync(IGenerativeModel model, int[] prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        if (options.NumBeams > 1) throw new XmtfException("streaming needs greedy or sampling (num_beams = 1)");
        var channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var worker = Task.Run(() =>
        {
            try
            {
                Generate(model, [prompt], options with { NumReturnSequences = 1 }, (_, t) => { channel.Writer.TryWrite(t); return false; }, cancel);
                channel.Writer.Complete();
            }
            catch (Exception e) { channel.Writer.Complete(e); }
        }, CancellationToken.None);
        await foreach (var t in channel.Reader.ReadAllAsync(cancel)) yield return t;
        await worker;
    }

    static GeneratedSequence[][] Sample(IGenerativeModel model, IReadOnlyList<int[]> prompts, GenerationOptions o,
        TokenCallback? onToken, CancellationToken cancel)
    {
        int copies = o.DoSample ? o.NumReturnSequences : 1;
        var d = model.Defaults;
        using var session = model.Start(prompts, copies, MaxNew(model, prompts, o));
        int rows = session.Rows, vocab = model.VocabSize;
        var history = Enumerable.Range(0, rows).Select(r => new List<int>(session.StartIds(r))).ToArray();
        int startLen = history[0].Count, maxNew = o.NewTokenBudget(startLen);
        var generated = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var reason = new string?[rows];
        var tokens = new int[rows];
        var scratch = new float[vocab];
        var rng = LogitsProcessors.Rng(o);
        if (maxNew > 0)
        {
            var logits = session.Prefill();
            for (int step = 0; ; step++)
            {
                cancel.ThrowIfCancellationRequested();
                for (int r = 0; r < rows; r++)
                {
                    if (reason[r] is not null) { tokens[r] = d.PadTokenId; continue; }
                    tokens[r] = LogitsProcessors.NextToken(logits.Slice(r * vocab, vocab), scratch, history[r], step, o, d, rng);
                }
                bool allDone = true;
                for (int r = 0; r < rows; r++)
                {
                    history[r].Add(tokens[r]);
                    if (reason[r] is not null) continue;
                    generated[r].Add(tokens[r]);
                    if (d.EosTokenIds.Contains(tokens[r])) reason[r] = "eos";
                    else if (onToken?.Invoke(r, tokens[r]) == true) reason[r] = "stop";
                    else if (step + 1 >= maxNew) reason[r] = "length";
                    if (reason[r] == "eos") onToken?.Invoke(r, tokens[r]);
                    allDone &= reason[r] is not null;
                }
                if (allDone) break;
                logits = session.Step(tokens);
            }
        }
        return Enumerable.Range(0, prompts.Count)
            .Select(p => Enumerable.Range(p * copies, copies).Select(r => new GeneratedSequence(generated[r].ToArray(), reason[r] ?? "length")).ToArray())
            .ToArray();
    }

    static int MaxNew(IGenerativeModel model, IReadOnlyList<int[]> prompts, GenerationOptions o)
    {
        // Decoder-only rows start with the (padded) prompt, encoder-decoder rows with one start token.
        int startLen = model.Family == ModelFamily.DecoderOnly ? prompts.Max(p => p.Length) : 1;
        return o.NewTokenBudget(startLen);
    }

    /// <summary>transformers' BeamHypotheses: the num_beams best finished sequences of one prompt.</summary>
    sealed class Hypotheses(int numBeams, float lengthPenalty, bool? earlyStopping, int maxLength)
    {
        public readonly List<(double Score, int[] Ids, bool Eos)> Beams = new();
        double _worst = 1e9;

        public void Add(int[] ids, double sumLogprobs, int generatedLen, bool eos)
        {
            double score = sumLogprobs / Math.Pow(generatedLen, lengthPenalty);
            if (Beams.Count < numBeams || score > _worst)
            {
                Beams.Add((score, ids, eos));
                if (Beams.Count > numBeams)
                {
                    var sorted = Beams.Select((b, i) => (b.Score, i)).OrderBy(x => x.Score).ToList();
                    Beams.RemoveAt(sorted[0].i);
                    _worst = sorted[1].Score;
                }
                else _worst = Math.Min(score, _worst);
            }
        }

        public bool IsDone(double bestSumLogprobs, int curLen, int promptLen)
        {
            if (Beams.Count < numBeams) return false;
            if (earlyStopping == true) return true;
            int len = earlyStopping == false || lengthPenalty <= 0 ? curLen - promptLen : maxLength - promptLen;
            return _worst >= bestSumLogprobs / Math.Pow(len, lengthPenalty);
        }
    }

    static GeneratedSequence[][] BeamSearch(IGenerativeModel model, IReadOnlyList<int[]> prompts, GenerationOptions o, CancellationToken cancel)
    {
        var d = model.Defaults;
        int batch = prompts.Count, k = o.NumBeams, vocab = model.VocabSize;
        using var session = model.Start(prompts, k, MaxNew(model, prompts, o));
        int rows = session.Rows;
        var history = Enumerable.Range(0, rows).Select(r => session.StartIds(r)).ToArray();
        int promptLen = history[0].Length, maxNew = o.NewTokenBudget(promptLen), maxLength = promptLen + maxNew;
        var beamScores = new double[rows];
        for (int r = 0; r < rows; r++) beamScores[r] = r % k == 0 ? 0 : -1e9;
        var hyps = Enumerable.Range(0, batch).Select(_ => new Hypotheses(k, o.LengthPenalty, o.EarlyStopping, maxLength)).ToArray();
        var done = new bool[batch];
        int keep = Math.Max(2, 1 + d.EosTokenIds.Length) * k;
        var scores = new float[rows * vocab];
        var candScore = new double[keep];
        var candIndex = new long[keep];
        var nextTokens = new int[rows];
        var nextSources = new int[rows];
        var nextScores = new double[rows];
        int curLen = promptLen;
        if (maxNew > 0)
        {
            var logits = session.Prefill();
            for (int step = 0; ; step++)
            {
                cancel.ThrowIfCancellationRequested();
                for (int r = 0; r < rows; r++)
                {
                    var row = scores.AsSpan(r * vocab, vocab);
                    logits.Slice(r * vocab, vocab).CopyTo(row);
                    Tensors.Kernels.LogSoftmax(row);
                    LogitsProcessors.Apply(row, history[r], step, o, d, numBeams: k);
                }
                for (int b = 0; b < batch; b++)
                {
                    if (done[b])
                    {
                        for (int j = 0; j < k; j++) { nextScores[b * k + j] = 0; nextTokens[b * k + j] = d.PadTokenId; nextSources[b * k + j] = 0; }
                        continue;
                    }
                    TopK(scores, beamScores, b * k, k, vocab, candScore, candIndex);
                    int beam = 0;
                    for (int rank = 0; rank < keep && beam < k; rank++)
                    {
                        int src = b * k + (int)(candIndex[rank] / vocab), tok = (int)(candIndex[rank] % vocab);
                        if (d.EosTokenIds.Contains(tok))
                        {
                            if (rank >= k) continue;
                            hyps[b].Add(history[src], candScore[rank], curLen + 1 - promptLen, eos: true);
                        }
                        else
                        {
                            nextScores[b * k + beam] = candScore[rank];
                            nextTokens[b * k + beam] = tok;
                            nextSources[b * k + beam] = src;
                            beam++;
                        }
                    }
                    done[b] = hyps[b].IsDone(candScore[0], curLen + 1, promptLen);
                }
                history = Enumerable.Range(0, rows).Select(r => (int[])[.. history[nextSources[r]], nextTokens[r]]).ToArray();
                Array.Copy(nextScores, beamScores, rows);
                curLen++;
                if (done.All(x => x) || curLen >= maxLength) break;
                session.Reorder(nextSources);
                logits = session.Step(nextTokens);
            }
        }
        var result = new GeneratedSequence[batch][];
        for (int b = 0; b < batch; b++)
        {
            if (!done[b])
                for (int j = 0; j < k; j++)
                    hyps[b].Add(history[b * k + j], beamScores[b * k + j], history[b * k + j].Length - promptLen, eos: false);
            // Stable sort then take from the end, as transformers' sorted(...).pop().
            var sorted = hyps[b].Beams.OrderBy(h => h.Score).ToList();
            result[b] = new GeneratedSequence[o.NumReturnSequences];
            for (int j = 0; j < o.NumReturnSequences; j++)
            {
                var (score, ids, eos) = sorted[^1];
                sorted.RemoveAt(sorted.Count - 1);
                int[] tokens = eos ? [.. ids[promptLen..], d.EosTokenIds[0]] : ids[promptLen..];
                result[b][j] = new GeneratedSequence(tokens, eos ? "eos" : "length", score);
            }
        }
        return result;
    }

    /// <summary>The best <c>cand.Length</c> (beam score + token log-prob) over the k beams of one prompt, best first.</summary>
    static void TopK(float[] scores, double[] beamScores, int firstRow, int k, int vocab, double[] candScore, long[] candIndex)
    {
        int n = candScore.Length, count = 0;
        for (int j = 0; j < k; j++)
        {
            var row = scores.AsSpan((firstRow + j) * vocab, vocab);
            // Scores are summed in fp32 as transformers does (log-probs + beam score, both float tensors).
            float bs = (float)beamScores[firstRow + j];
            for (int t = 0; t < vocab; t++)
            {
                double s = row[t] + bs;
                if (count == n && s <= candScore[n - 1]) continue;
                int pos = count < n ? count++ : n - 1;
                while (pos > 0 && candScore[pos - 1] < s) { candScore[pos] = candScore[pos - 1]; candIndex[pos] = candIndex[pos - 1]; pos--; }
                candScore[pos] = s; candIndex[pos] = (long)j * vocab + t;
            }
        }
    }
}
