using System.Numerics.Tensors;

namespace Xmtf.Generation;

/// <summary>
/// transformers' logits processors and sampling warpers, in the order <c>generate()</c> applies them:
/// repetition penalty, no-repeat n-gram, min new tokens; then (sampling) temperature, top-k, top-p.
/// Public so that schedulers with their own decode loop (the server's continuous batching) choose tokens exactly as
/// <see cref="Generator"/> does.
/// </summary>
public static class LogitsProcessors
{
    /// <param name="scores">one row of logits (or log-probs in beam search), changed in place</param>
    /// <param name="ids">the row's ids so far (start ids + generated)</param>
    /// <param name="newTokens">tokens generated so far</param>
    /// <param name="o">the generation's options</param>
    /// <param name="d">the model's special ids</param>
    /// <param name="numBeams">beams per prompt (top-k and top-p keep at least 2 tokens in beam search)</param>
    public static void Apply(Span<float> scores, IReadOnlyList<int> ids, int newTokens, GenerationOptions o, GenerationDefaults d, int numBeams)
    {
        if (!ChangesScores(o, newTokens)) return;
        if (o.RepetitionPenalty != 1f)
            foreach (var id in ids.Distinct())
            {
                if ((uint)id >= (uint)scores.Length) continue;
                float s = scores[id];
                scores[id] = s < 0 ? s * o.RepetitionPenalty : s / o.RepetitionPenalty;
            }
        int n = o.NoRepeatNgramSize;
        if (n > 0 && ids.Count + 1 >= n)
        {
            // Ban every token that would complete an n-gram already present in ids.
            int start = ids.Count - (n - 1);
            for (int i = 0; i + n <= ids.Count; i++)
            {
                bool match = true;
                for (int j = 0; j < n - 1 && match; j++) match = ids[i + j] == ids[start + j];
                if (match && (uint)ids[i + n - 1] < (uint)scores.Length) scores[ids[i + n - 1]] = float.NegativeInfinity;
            }
        }
        if (newTokens < o.MinNewTokens)
            foreach (var e in d.EosTokenIds)
                if ((uint)e < (uint)scores.Length) scores[e] = float.NegativeInfinity;
        if (o.DoSample) Warp(scores, o, minKeep: numBeams > 1 ? 2 : 1);
    }

    /// <summary>Whether <see cref="Apply"/> may change a score at this step (else the logits can be used as they are).</summary>
    static bool ChangesScores(GenerationOptions o, int newTokens) =>
        o.RepetitionPenalty != 1f || o.NoRepeatNgramSize > 0 || newTokens < o.MinNewTokens || o.DoSample;

    /// <summary>
    /// The next token of one row of a greedy or sampling generation: the processors (and warpers) applied to a copy
    /// of <paramref name="logits"/> in <paramref name="scratch"/>, then a sample or the best. When none would change
    /// a score, the best of the logits themselves, over the threads (<see cref="Tensors.Kernels.IndexOfMax"/>).
    /// </summary>
    public static int NextToken(ReadOnlySpan<float> logits, Span<float> scratch, IReadOnlyList<int> ids, int newTokens, GenerationOptions o, GenerationDefaults d, Random rng)
    {
        if (!ChangesScores(o, newTokens)) return Tensors.Kernels.IndexOfMax(logits);
        logits.CopyTo(scratch);
        Apply(scratch, ids, newTokens, o, d, numBeams: 1);
        return o.DoSample ? SampleToken(scratch, o, rng) : TensorPrimitives.IndexOfMax(scratch);
    }

    static void Warp(Span<float> scores, GenerationOptions o, int minKeep)
    {
        if (o.Temperature != 1f) TensorPrimitives.Divide(scores, o.Temperature, scores);
        if (o.TopK > 0 && o.TopK < scores.Length)
        {
            int k = Math.Max(o.TopK, minKeep);
            var copy = scores.ToArray();
            Array.Sort(copy);
            float kth = copy[^k];
            for (int i = 0; i < scores.Length; i++) if (scores[i] < kth) scores[i] = float.NegativeInfinity;
        }
        if (o.TopP < 1f)
        {
            // Sort ascending, drop the low tail whose cumulative probability stays <= 1 - top_p.
            var idx = new int[scores.Length];
            for (int i = 0; i < idx.Length; i++) idx[i] = i;
            var sorted = scores.ToArray();
            Array.Sort(sorted, idx);
            var probs = (float[])sorted.Clone();
            TensorPrimitives.SoftMax(sorted, probs);
            float cum = 0;
            for (int i = 0; i < probs.Length - minKeep; i++)
            {
                cum += probs[i];
                if (cum <= 1 - o.TopP) scores[idx[i]] = float.NegativeInfinity;
                else break;
            }
        }
    }

    /// <summary>The random source of a generation: seeded from <see cref="GenerationOptions.Seed"/> when given.</summary>
    public static Random Rng(GenerationOptions o) =>
        o.Seed is { } seed ? new Random(unchecked((int)seed ^ (int)(seed >> 32))) : Random.Shared;

    /// <summary>Draws a token from softmax(scores) (scores are overwritten).</summary>
    public static int SampleToken(Span<float> scores, GenerationOptions o, Random rng)
    {
        float max = TensorPrimitives.Max(scores);
        double sum = 0;
        for (int i = 0; i < scores.Length; i++) sum += scores[i] = MathF.Exp(scores[i] - max);
        double u = rng.NextDouble() * sum, acc = 0;
        int last = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            if (scores[i] <= 0) continue;
            last = i;
            acc += scores[i];
            if (acc > u) return i;
        }
        return last;
    }
}
