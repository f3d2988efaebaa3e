using System.Text.Json;
using Xmtf.Benchmarking;
using Xmtf.IO;
using Xmtf.Models;
using Xmtf.Tensors;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf bench --model DIR|HUB-ID | --config NAME [--dtype f32|bf16|int8] [--input-tokens 64] [--new-tokens 64]
/// [--batch 1] [--threads N] [--repeats 3] [--json]</c>: prompt and decode speed next to
/// the machine's bandwidth and FMA limits. With <c>--quality</c>: bf16 and int8 logits against fp32's on the
/// directory's golden.json prompts (random prompts without one).
/// </summary>
static class BenchCommand
{
    static readonly JsonSerializerOptions Json = new(ModelArgs.Json) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static int Run(string[] argv)
    {
        var a = Parse(argv);
        if (a.Flag("quality"))
        {
            var rows = Quality(a);
            if (a.Flag("json")) Console.Out.WriteLine(JsonSerializer.Serialize(rows, Json));
            else PrintQuality(rows);
            return 0;
        }
        var r = Measure(a);
        if (a.Flag("json")) Console.Out.WriteLine(ToJson(r));
        else Print(r);
        return 0;
    }

    internal static Args Parse(string[] argv)
    {
        var a = Args.Parse("bench", argv,
            ["model", "config", "dtype", "threads", "input-tokens", "new-tokens", "batch", "repeats", "seed", .. HubCli.ValueOptions],
            ["json", "quality", .. HubCli.FlagOptions]);
        if (a.Positional.Count > 0) throw new XmtfException($"'xmtf bench' takes no positional arguments (got '{a.Positional[0]}')");
        if ((a.Get("model") is null) == (a.Get("config") is null)) throw new XmtfException("'xmtf bench' needs exactly one of --model DIR and --config NAME");
        return a;
    }

    internal static BenchResult Measure(Args a)
    {
        var dtype = ModelArgs.ParseDType(a.Get("dtype"));
        var o = new BenchOptions
        {
            InputTokens = a.GetInt("input-tokens") ?? 64, NewTokens = a.GetInt("new-tokens") ?? 64, Batch = a.GetInt("batch") ?? 1,
            Threads = a.GetInt("threads") ?? Environment.ProcessorCount, Repeats = a.GetInt("repeats") ?? 3,
            Seed = a.GetInt("seed") ?? 1,
        };
        return ModelBench.Run(ModelDir(a, dtype), dtype, o, a.Get("config"));
    }

    internal static string ToJson(BenchResult r) => JsonSerializer.Serialize(r, Json);

    internal static DTypeQuality[] Quality(Args a)
    {
        var dir = ModelDir(a, WeightType.F32);
        int newTokens = a.GetInt("new-tokens") ?? 20;
        var prompts = DTypeQuality.FixturePrompts(dir);
        if (prompts is null)
        {
            using var probe = ModelBench.Load(dir, WeightType.F32);
            prompts = ModelBench.RandomPrompts(probe.VocabSize, 4, a.GetInt("input-tokens") ?? 64, a.GetInt("seed") ?? 1);
        }
        return DTypeQuality.Measure(dir, prompts, newTokens, WeightType.BF16, WeightType.I8);
    }

    /// <summary>
    /// The model directory: --model (a directory, or a Hub id fetched into the cache), or for --config a random model of that shape cached under
    /// $TMPDIR/xmtf-bench/NAME-f32|bf16 (int8 quantizes the f32 file at load), written once.
    /// </summary>
    static string ModelDir(Args a, WeightType dtype)
    {
        if (a.Get("model") is { } model) return HubCli.ResolveModel(a, model);
        var name = a.Get("config")!;
        var config = ModelShapes.Config(name);
        var storage = dtype == WeightType.BF16 ? DType.BF16 : DType.F32;
        var cached = Path.Combine(Path.GetTempPath(), "xmtf-bench", $"{name}-{(storage == DType.BF16 ? "bf16" : "f32")}");
        if (File.Exists(Path.Combine(cached, "model.safetensors"))) return cached;
        // Written aside and moved in whole, so an interrupted run never leaves a half model in the cache.
        var partial = $"{cached}.partial-{Environment.ProcessId}";
        Console.Error.WriteLine($"writing random {name} ({storage}) to {cached} ...");
        ModelShapes.WriteRandom(partial, config, storage, seed: 0);
        try { Directory.Move(partial, cached); }
        catch (IOException) when (File.Exists(Path.Combine(cached, "model.safetensors"))) { Directory.Delete(partial, true); } // another run won
        return cached;
    }

    static void Print(BenchResult r)
    {
        Console.WriteLine($"model       {r.Model} ({r.ModelType}), {r.Dtype}, {r.Threads} threads, batch {r.Batch}, {r.InputTokens} in / {r.NewTokens} out");
        Console.WriteLine($"weights     {r.WeightBytes / 1e6:F1} MB in memory, {r.BytesPerToken / 1e6:F1} MB read per decode step");
        Console.WriteLine($"prompt      {r.EncodeMs:F1} ms, {r.EncodeGflops:F1} GFLOP/s = {r.EncodeFraction:P0} of the {r.FmaPeakGflops:F0} GFLOP/s FMA peak");
        Console.WriteLine($"first token {r.FirstTokenMs:F1} ms after the start");
        Console.WriteLine($"decode      {r.DecodeTokensPerS:F1} tokens/s = {r.BandwidthFraction:P0} of the bandwidth limit {r.DecodeLimitTokensPerS:F1} tokens/s ({r.BandwidthGbps:F1} GB/s)");
        Console.WriteLine($"peak RSS    {r.PeakRssBytes / 1e6:F1} MB = {r.PeakRssOverWeights:F2}x the weights");
    }

    static void PrintQuality(DTypeQuality[] rows)
    {
        Console.WriteLine($"{"dtype",-6} {"prompts",7} {"steps",6} {"max |dlogit|",13} {"max |logit|",12} {"argmax agree",13} {"same greedy",12}");
        foreach (var q in rows)
            Console.WriteLine($"{q.DType,-6} {q.Prompts,7} {q.Steps,6} {q.MaxLogitError,13:0.00e+00} {q.MaxAbsLogit,12:F2} {q.ArgmaxAgreement,13:P1} {q.SameGreedy,8}/{q.Prompts}");
    }
}
