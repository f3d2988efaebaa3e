using System.Text.Json.Nodes;

namespace Xmtf.Generation;

/// <summary>
/// Decoding options, named and defaulted as transformers' <c>GenerationConfig</c>. A checkpoint's
/// generation_config.json gives the starting values (see <see cref="GenerationDefaults.Options"/>), the
/// caller overrides with <c>with { ... }</c>.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>New tokens to generate at most. Null: derived from <see cref="MaxLength"/> as transformers does.</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>transformers' <c>max_length</c> (start ids + new tokens), used only when MaxNewTokens is null.</summary>
    public int MaxLength { get; init; } = 20;
    public int MinNewTokens { get; init; }
    public int NumBeams { get; init; } = 1;
    public float LengthPenalty { get; init; } = 1f;
    /// <summary>true, false, or null for transformers' "never".</summary>
    public bool? EarlyStopping { get; init; } = false;
    public int NumReturnSequences { get; init; } = 1;
    public bool DoSample { get; init; }
    public float Temperature { get; init; } = 1f;
    public int TopK { get; init; } = 50;
    public float TopP { get; init; } = 1f;
    public float RepetitionPenalty { get; init; } = 1f;
    public int NoRepeatNgramSize { get; init; }
    public ulong? Seed { get; init; }
    /// <summary>Generation of a row ends once its decoded text contains one of these (the text keeps it).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>New-token budget for a batch whose rows start with <paramref name="startLength"/> ids.</summary>
    public int NewTokenBudget(int startLength) => MaxNewTokens ?? Math.Max(MaxLength - startLength, 1);

    /// <summary>Checks the options against each other, with messages naming the option.</summary>
    public void Validate()
    {
        if (MaxNewTokens is < 0) throw new XmtfException("max_new_tokens must be >= 0");
        if (MinNewTokens < 0) throw new XmtfException("min_new_tokens must be >= 0");
        if (NumBeams < 1) throw new XmtfException("num_beams must be >= 1");
        if (NumReturnSequences < 1) throw new XmtfException("num_return_sequences must be >= 1");
        if (NumBeams > 1 && NumReturnSequences > NumBeams) throw new XmtfException("num_return_sequences must be <= num_beams");
        if (NumBeams == 1 && !DoSample && NumReturnSequences > 1) throw new XmtfException("greedy decoding returns one sequence; use --do-sample or --num-beams for num_return_sequences > 1");
        if (NumBeams > 1 && DoSample) throw new XmtfException("beam sampling (num_beams > 1 with do_sample) is not supported");
        if (DoSample && !(Temperature > 0)) throw new XmtfException("temperature must be > 0 when sampling");
        if (TopK < 0) throw new XmtfException("top_k must be >= 0");
        if (!(TopP > 0 && TopP <= 1)) throw new XmtfException("top_p must be in (0, 1]");
        if (!(RepetitionPenalty > 0)) throw new XmtfException("repetition_penalty must be > 0");
        if (NoRepeatNgramSize < 0) throw new XmtfException("no_repeat_ngram_size must be >= 0");
    }

    /// <summary>Options from a generation_config.json object (unknown keys are ignored, as transformers keeps them as attributes).</summary>
    public static GenerationOptions FromJson(JsonObject? g)
    {
        var o = new GenerationOptions();
        if (g is null) return o;
        int? I(string k) => g[k] is JsonValue v && v.TryGetValue<int>(out var x) ? x : null;
        float? F(string k) => g[k] is JsonValue v && v.TryGetValue<double>(out var x) ? (float)x : null;
        bool? B(string k) => g[k] is JsonValue v && v.TryGetValue<bool>(out var x) ? x : null;
        return o with
        {
            MaxNewTokens = I("max_new_tokens"),
            MaxLength = I("max_length") ?? o.MaxLength,
            MinNewTokens = I("min_new_tokens") ?? o.MinNewTokens,
            NumBeams = I("num_beams") ?? o.NumBeams,
            LengthPenalty = F("length_penalty") ?? o.LengthPenalty,
            EarlyStopping = g["early_stopping"] is JsonValue es && es.TryGetValue<string>(out var s) && s == "never" ? null : B("early_stopping") ?? o.EarlyStopping,
            NumReturnSequences = I("num_return_sequences") ?? o.NumReturnSequences,
            DoSample = B("do_sample") ?? o.DoSample,
            Temperature = F("temperature") ?? o.Temperature,
            TopK = I("top_k") ?? o.TopK,
            TopP = F("top_p") ?? o.TopP,
            RepetitionPenalty = F("repetition_penalty") ?? o.RepetitionPenalty,
            NoRepeatNgramSize = I("no_repeat_ngram_size") ?? o.NoRepeatNgramSize,
        };
    }
}
