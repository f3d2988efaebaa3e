using System.Globalization;
using Xmtf.Generation;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf generate --model M [options] "prompt" | -</c>. Options are transformers' generate() arguments;
/// defaults come from the checkpoint's generation_config.json, then these flags.
/// </summary>
static class GenerateCommand
{
    public static readonly string[] Values =
    [
        .. ModelArgs.Values, "max-new-tokens", "min-new-tokens", "num-beams", "length-penalty", "early-stopping",
        "num-return-sequences", "temperature", "top-k", "top-p", "seed", "repetition-penalty", "no-repeat-ngram-size",
        "stop", "batch-size",
    ];

    public static int Run(string[] argv)
    {
        var a = Args.Parse("generate", argv, Values, [.. ModelArgs.Flags, "json", "do-sample", "stream"]);
        var text = ModelArgs.SingleText(a, "generate");
        using var p = ModelArgs.Load(a, "generate");
        var o = Options(a, p.Model.Defaults.Options);
        o.Validate();
        if (text is null)
        {
            int batch = a.GetInt("batch-size") ?? 8;
            if (batch < 1) throw new XmtfException("--batch-size must be >= 1");
            var lines = ModelArgs.ReadLines(Console.In);
            var prompts = lines.Select((l, i) => ModelArgs.LineIds(l, i + 1, p.EncodePrompt)).ToList();
            // Real batches: prompts of a chunk are padded and decoded together.
            foreach (var chunk in prompts.Chunk(batch))
                foreach (var gens in p.Generate(chunk, o))
                    ModelArgs.WriteJson(Json(gens));
            return 0;
        }
        var ids = p.EncodePrompt(text);
        if (a.Flag("stream") && !a.Flag("json") && o.NumBeams == 1 && o.NumReturnSequences == 1)
        {
            foreach (var piece in p.StreamAsync(ids, o).ToBlockingEnumerable())
            {
                Console.Out.Write(piece);
                Console.Out.Flush();
            }
            Console.Out.WriteLine();
            return 0;
        }
        var result = p.Generate([ids], o)[0];
        if (a.Flag("json")) ModelArgs.WriteJson(Json(result));
        else foreach (var g in result) Console.Out.WriteLine(g.Text);
        return 0;
    }

    static object Json(GeneratedText[] gens)
    {
        var first = gens[0];
        if (gens.Length == 1) return new { text = first.Text, ids = first.Ids, finish_reason = first.FinishReason, score = first.Score };
        return new
        {
            text = first.Text, ids = first.Ids, finish_reason = first.FinishReason, score = first.Score,
            sequences = gens.Select(g => new { text = g.Text, ids = g.Ids, finish_reason = g.FinishReason, score = g.Score }),
        };
    }

    /// <summary>The checkpoint's defaults overridden by the flags given.</summary>
    public static GenerationOptions Options(Args a, GenerationOptions d) => d with
    {
        MaxNewTokens = a.GetInt("max-new-tokens") ?? d.MaxNewTokens,
        MinNewTokens = a.GetInt("min-new-tokens") ?? d.MinNewTokens,
        NumBeams = a.GetInt("num-beams") ?? d.NumBeams,
        LengthPenalty = (float?)a.GetDouble("length-penalty") ?? d.LengthPenalty,
        EarlyStopping = a.Get("early-stopping") switch
        {
            null => d.EarlyStopping,
            "true" => true,
            "false" => false,
            "never" => null,
            var e => throw new XmtfException($"--early-stopping must be true, false or never, got '{e}'"),
        },
        NumReturnSequences = a.GetInt("num-return-sequences") ?? d.NumReturnSequences,
        DoSample = a.Flag("do-sample") || d.DoSample,
        Temperature = (float?)a.GetDouble("temperature") ?? d.Temperature,
        TopK = a.GetInt("top-k") ?? d.TopK,
        TopP = (float?)a.GetDouble("top-p") ?? d.TopP,
        Seed = a.Get("seed") is { } s ? (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw new XmtfException($"--seed expects a non-negative integer, got '{s}'")) : d.Seed,
        RepetitionPenalty = (float?)a.GetDouble("repetition-penalty") ?? d.RepetitionPenalty,
        NoRepeatNgramSize = a.GetInt("no-repeat-ngram-size") ?? d.NoRepeatNgramSize,
        StopStrings = a.GetAll("stop").Count > 0 ? a.GetAll("stop") : d.StopStrings,
    };
}
