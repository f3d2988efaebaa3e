using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Xmtf.Tensors;

namespace Xmtf.Benchmarking;

/// <summary>
/// How far one weight type's outputs are from fp32's, along fp32's own greedy path (teacher forced, so one
/// early disagreement does not make every later step differ).
/// </summary>
/// <param name="DType">The weight type compared with fp32.</param>
/// <param name="Prompts">Prompts decoded.</param>
/// <param name="Steps">Logit rows compared (prompts x new tokens).</param>
/// <param name="MaxLogitError">Largest |logit - fp32 logit| over every row and vocabulary entry.</param>
/// <param name="MaxAbsLogit">Largest |fp32 logit|, the scale the error is on.</param>
/// <param name="ArgmaxAgreement">Share of rows whose argmax (the greedy token) is fp32's.</param>
/// <param name="SameGreedy">Prompts whose whole greedy continuation is fp32's.</param>
public sealed record DTypeQuality(string DType, int Prompts, int Steps, double MaxLogitError, double MaxAbsLogit, double ArgmaxAgreement, int SameGreedy)
{
    /// <summary>
    /// Prompt ids of a fixture directory's golden.json (mT5's <c>prompts[].input_ids</c>, BLOOM's
    /// <c>sequences</c>), empty ones left out; null when the directory has none.
    /// </summary>
    public static int[][]? FixturePrompts(string dir)
    {
        var path = Path.Combine(dir, "golden.json");
        if (!File.Exists(path)) return null;
        var g = JsonNode.Parse(File.ReadAllText(path))!;
        var lists = g["prompts"] is JsonArray prompts ? prompts.Select(p => p!["input_ids"]!.AsArray())
            : g["sequences"] is JsonArray seqs ? seqs.Select(s => s!.AsArray())
            : throw new XmtfException($"{path}: no 'prompts' or 'sequences'");
        return lists.Select(a => a.Select(x => x!.GetValue<int>()).ToArray()).Where(a => a.Length > 0).ToArray();
    }

    /// <summary>Compares each of <paramref name="dtypes"/> with fp32 on <paramref name="newTokens"/> greedy steps per prompt.</summary>
    public static DTypeQuality[] Measure(string dir, IReadOnlyList<int[]> prompts, int newTokens, params WeightType[] dtypes)
    {
        var models = new[] { WeightType.F32 }.Concat(dtypes).Select(t => ModelBench.Load(dir, t)).ToArray();
        try
        {
            int vocab = models[0].VocabSize, k = dtypes.Length;
            var maxErr = new double[k]; var agree = new int[k]; var same = new int[k];
            double maxLogit = 0;
            var diff = new float[vocab];
            foreach (var prompt in prompts)
            {
                // All models step together on fp32's greedy token.
                var sessions = models.Select(m => m.Start([prompt], 1, newTokens)).ToArray();
                try
                {
                    var logits = sessions.Select(s => s.Prefill().ToArray()).ToArray();
                    var diverged = new bool[k];
                    for (int step = 0; step < newTokens; step++)
                    {
                        int token = TensorPrimitives.IndexOfMax(logits[0]);
                        maxLogit = Math.Max(maxLogit, TensorPrimitives.MaxMagnitude(logits[0]));
                        for (int i = 0; i < k; i++)
                        {
                            TensorPrimitives.Subtract(logits[i + 1], logits[0], diff);
                            maxErr[i] = Math.Max(maxErr[i], Math.Abs(TensorPrimitives.MaxMagnitude(diff)));
                            if (TensorPrimitives.IndexOfMax(logits[i + 1]) == token) agree[i]++;
                            else diverged[i] = true;
                        }
                        if (step < newTokens - 1) logits = sessions.Select(s => s.Step([token]).ToArray()).ToArray();
                    }
                    for (int i = 0; i < k; i++) if (!diverged[i]) same[i]++;
                }
                finally { foreach (var s in sessions) s.Dispose(); }
            }
            int steps = prompts.Count * newTokens;
            return dtypes.Select((t, i) => new DTypeQuality(ModelBench.Name(t), prompts.Count, steps, maxErr[i], maxLogit, (double)agree[i] / steps, same[i])).ToArray();
        }
        finally { foreach (var m in models) m.Dispose(); }
    }
}
