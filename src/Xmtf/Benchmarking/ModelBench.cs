using System.Diagnostics;
using System.Numerics.Tensors;
using Xmtf.Generation;
using Xmtf.IO;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;
using Xmtf.Tensors;

namespace Xmtf.Benchmarking;

/// <summary>What <see cref="ModelBench.Run"/> measures.</summary>
public sealed record BenchOptions
{
    /// <summary>Tokens of each (random) prompt.</summary>
    public int InputTokens { get; init; } = 64;
    /// <summary>Decode steps timed; eos is ignored.</summary>
    public int NewTokens { get; init; } = 64;
    /// <summary>Prompts decoded together (tokens/s is summed over them).</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Threads of the kernels and of the machine-limit measurements.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Runs (prompt passes, decode between two bandwidth probes); the best prompt pass and the median decode run are reported.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Seed of the random prompts.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>One benchmark run; <c>--json</c> prints it with snake_case keys.</summary>
public sealed record BenchResult
{
    public required string Model { get; init; }
    public required string ModelType { get; init; }
    public required string Dtype { get; init; }
    public required int Threads { get; init; }
    public required int Batch { get; init; }
    public required int InputTokens { get; init; }
    public required int NewTokens { get; init; }
    /// <summary>Bytes of all weight matrices in memory (<see cref="ModelCost.WeightBytes"/>).</summary>
    public required long WeightBytes { get; init; }
    /// <summary>Weight bytes one decode step reads, shared by the batch's rows (<see cref="ModelCost.BytesPerToken"/>).</summary>
    public required long BytesPerToken { get; init; }
    /// <summary>Best prompt pass: mT5's encoder stack, BLOOM's prompt through the lm_head of its last position.</summary>
    public required double EncodeMs { get; init; }
    /// <summary>
    /// Best time to the first token's logits: for mT5 the encoder, the decoder's cross-attention keys/values,
    /// its caches and first step; for BLOOM its prompt pass and caches.
    /// </summary>
    public required double FirstTokenMs { get; init; }
    public required double EncodeGflops { get; init; }
    public required double FmaPeakGflops { get; init; }
    /// <summary>EncodeGflops / FmaPeakGflops.</summary>
    public required double EncodeFraction { get; init; }
    /// <summary>Decoded tokens per second, summed over the batch, of the median run (see <see cref="BandwidthFraction"/>).</summary>
    public required double DecodeTokensPerS { get; init; }
    public required double BandwidthGbps { get; init; }
    /// <summary>Tokens/s if every step only streamed its weight bytes at the measured bandwidth.</summary>
    public required double DecodeLimitTokensPerS { get; init; }
    /// <summary>
    /// DecodeTokensPerS / DecodeLimitTokensPerS: the share of the bandwidth the weights got, in the decode run
    /// whose share, against the bandwidth probed right before and after it, is the median of the repeats.
    /// </summary>
    public required double BandwidthFraction { get; init; }
    /// <summary>Peak resident set of the process while it loads and runs the model.</summary>
    public required long PeakRssBytes { get; init; }
    public required double PeakRssOverWeights { get; init; }
}

/// <summary>
/// <c>xmtf bench</c>: prompt and decode speed of a model on random token ids, next to the machine's own
/// limits measured in the same process with the same thread count.
/// </summary>
public static class ModelBench
{
    /// <summary>Loads an mT5/T5 or BLOOM directory by its config's model_type (no tokenizer needed).</summary>
    public static IGenerativeModel Load(string dir, WeightType dtype)
    {
        string type;
        using (var probe = Checkpoint.OpenConfig(dir)) type = probe.ModelType;
        return type switch
        {
            "t5" or "mt5" => MT5Model.Load(dir, dtype),
            "bloom" => BloomModel.Load(dir, dtype),
            _ => throw new XmtfException($"{dir}: model_type '{type}' is not supported (mt5, t5 and bloom are)"),
        };
    }

    /// <summary>The name <c>--dtype</c> takes for a weight type.</summary>
    public static string Name(WeightType t) => t switch { WeightType.F32 => "f32", WeightType.BF16 => "bf16", _ => "int8" };

    /// <summary><paramref name="count"/> prompts of uniformly random ids (specials included: speed does not depend on them).</summary>
    public static int[][] RandomPrompts(int vocab, int count, int tokens, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, tokens).Select(_ => rng.Next(vocab)).ToArray()).ToArray();
    }

    /// <summary>Measures the model in <paramref name="dir"/> loaded as <paramref name="dtype"/>.</summary>
    public static BenchResult Run(string dir, WeightType dtype, BenchOptions o, string? name = null)
    {
        if (o.InputTokens < 1 || o.NewTokens < 1 || o.Batch < 1 || o.Threads < 1 || o.Repeats < 1)
            throw new XmtfException("input tokens, new tokens, batch, threads and repeats must be >= 1");
        int savedThreads = Kernels.Threads;
        Kernels.Threads = o.Threads;
        try
        {
            Timings t;
            ModelCost cost;
            string modelType;
            MachineLimits.ResetPeakRss(); // the peak from loading on
            using (var model = Load(dir, dtype))
            {
                modelType = model.Family == ModelFamily.EncoderDecoder ? "mt5" : "bloom";
                cost = ModelCost.Of(model, dtype, o.Batch, o.InputTokens);
                t = Time(model, RandomPrompts(model.VocabSize, o.Batch, o.InputTokens, o.Seed), o);
            }
            double peak = t.FmaPeakGflops;
            double tokensPerS = o.NewTokens * o.Batch / t.Decode;
            double limit = t.BandwidthGbps * 1e9 / cost.BytesPerToken * o.Batch;
            double gflops = cost.PromptFlops / t.Prompt / 1e9;
            return new BenchResult
            {
                Model = name ?? dir, ModelType = modelType, Dtype = Name(dtype), Threads = o.Threads, Batch = o.Batch,
                InputTokens = o.InputTokens, NewTokens = o.NewTokens, WeightBytes = cost.WeightBytes, BytesPerToken = cost.BytesPerToken,
                EncodeMs = t.Prompt * 1e3, FirstTokenMs = t.FirstToken * 1e3, EncodeGflops = gflops, FmaPeakGflops = peak, EncodeFraction = gflops / peak,
                DecodeTokensPerS = tokensPerS, BandwidthGbps = t.BandwidthGbps, DecodeLimitTokensPerS = limit, BandwidthFraction = tokensPerS / limit,
                PeakRssBytes = t.PeakRss, PeakRssOverWeights = (double)t.PeakRss / cost.WeightBytes,
            };
        }
        finally { Kernels.Threads = savedThreads; }
    }

    /// <summary>The memory one decode step streams: its weight matrices (int8 scales included).</summary>
    static unsafe List<(nint, long)> StepRegions(IGenerativeModel model) => (model switch
    {
        MT5Model t5 => t5.StepWeights(),
        BloomModel bloom => bloom.StepWeights(),
        _ => throw new XmtfException($"no bandwidth probe for {model.GetType().Name}"),
    }).Distinct().Select(w => ((nint)w.Data, w.ByteCount)).ToList();

    readonly record struct Timings(double Prompt, double FmaPeakGflops, double FirstToken, double Decode, double BandwidthGbps, long PeakRss);

    /// <summary>
    /// Seconds of the best prompt pass (mT5: <see cref="MT5Model.Encode"/> alone), of the best start to the
    /// first token's logits, and of the best run of exactly NewTokens decode steps, fed argmax tokens through
    /// <see cref="IDecoderSession.Step"/> so eos cannot end them early. This VM's memory bandwidth drifts by
    /// tens of percent within a minute, so right before and right after each decode run the step's own weights
    /// are read as many times as it read them: each run against the mean of its own two probes, and the run
    /// with the median of these fractions is the one reported (its tokens/s and its bandwidth). Setting the best
    /// run against the highest probe of the whole bench compared different minutes (mt0-small f32 came out at
    /// 0.70 in one full table and 0.88 in the next); one run against its own probes alone once came out at 1.5,
    /// when a probe met a slow moment. The median of three drops an outlier either way.
    /// The FMA peak is probed after every prompt pass and the highest probe counts against the best pass
    /// (compute is steadier here than bandwidth, and a low probe must not flatter the pass).
    /// </summary>
    static Timings Time(IGenerativeModel model, int[][] prompts, BenchOptions o)
    {
        int rows = prompts.Length, vocab = model.VocabSize;
        var tokens = new int[rows];
        var regions = StepRegions(model);
        double bestPrompt = double.MaxValue, peak = 0, bestFirst = double.MaxValue;
        var runs = new List<(double Seconds, double Gbps)>();
        for (int r = 0; r < o.Repeats; r++)
        {
            // The prompt pass varies most run to run (it streams weights the decode left cold): three per repeat.
            var sw = new Stopwatch();
            for (int p = 0; p < 3; p++)
            {
                GC.Collect(); // a generation has one session: dead ones must not count in the peak RSS
                sw.Restart();
                if (model is MT5Model t5) t5.Encode(prompts, out _, out _);
                else using (var prompt = model.Start(prompts, 1, 1)) prompt.Prefill();
                bestPrompt = Math.Min(bestPrompt, sw.Elapsed.TotalSeconds);
                peak = Math.Max(peak, MachineLimits.FmaPeakGflops(o.Threads, repeats: 2));
            }
            GC.Collect();
            sw.Restart();
            using (var session = model.Start(prompts, 1, o.NewTokens))
            {
                var logits = session.Prefill();
                bestFirst = Math.Min(bestFirst, sw.Elapsed.TotalSeconds);
                double before = MachineLimits.ReadBandwidthGBps(o.Threads, regions, passes: o.NewTokens);
                sw.Restart();
                for (int s = 0; s < o.NewTokens; s++)
                {
                    for (int i = 0; i < rows; i++) tokens[i] = Kernels.IndexOfMax(logits.Slice(i * vocab, vocab));
                    logits = session.Step(tokens);
                }
                double decode = sw.Elapsed.TotalSeconds;
                double after = MachineLimits.ReadBandwidthGBps(o.Threads, regions, passes: o.NewTokens);
                runs.Add((decode, (before + after) / 2));
            }
        }
        // The fraction of a run is proportional to 1 / (seconds * GB/s): the median run by that product.
        var median = runs.OrderBy(r => r.Seconds * r.Gbps).ElementAt(runs.Count / 2);
        return new Timings(bestPrompt, peak, bestFirst, median.Seconds, median.Gbps, MachineLimits.PeakRssBytes());
    }
}
