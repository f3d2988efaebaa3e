using Xmtf.Generation;

namespace Xmtf.Server;

/// <summary>
/// The decoding options a request may set, shared by the TGI, OpenAI and <see cref="XmtfChatClient"/> front
/// ends. Unset values come from the checkpoint's generation_config.json (greedy for mT0 and BLOOMZ), except
/// top-k, which is off unless asked for, as in TGI and OpenAI.
/// </summary>
public sealed record Sampling
{
    public int? MaxNewTokens { get; init; }
    public bool? DoSample { get; init; }
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    public int? TopK { get; init; }
    public float? RepetitionPenalty { get; init; }
    public ulong? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>The prompt's ids; 413 beyond the server's max input tokens.</summary>
    public static int[] Prompt(Scheduler s, string text)
    {
        var ids = s.Pipeline.EncodePrompt(text);
        if (ids.Length > s.Limits.MaxInputTokens)
            throw new ApiException(413, $"the prompt has {ids.Length} tokens; this server takes at most {s.Limits.MaxInputTokens} (max-input-tokens)");
        if (ids.Length == 0) throw new ApiException(422, "the prompt is empty");
        return ids;
    }

    /// <summary>Options for <paramref name="prompt"/>: 422 when a value is out of range or above the server's limits.</summary>
    public GenerationOptions Options(Scheduler s, int[] prompt)
    {
        var m = s.Pipeline.Model;
        var d = m.Defaults.Options;
        // Decoder-only rows start with the prompt, encoder-decoder rows with one start token (as Generator).
        int startLength = m.Family == ModelFamily.DecoderOnly ? prompt.Length : 1;
        int limit = s.Limits.MaxNewTokens;
        int max = MaxNewTokens ?? Math.Min(d.NewTokenBudget(startLength), limit);
        if (max < 1) throw new ApiException(422, "max new tokens must be >= 1");
        if (max > limit) throw new ApiException(422, $"max new tokens is {max}; this server generates at most {limit} (max-new-tokens)");
        var o = d with
        {
            MaxNewTokens = max,
            NumBeams = 1,
            NumReturnSequences = 1,
            DoSample = DoSample ?? d.DoSample,
            Temperature = Temperature ?? d.Temperature,
            TopP = TopP ?? d.TopP,
            TopK = TopK ?? 0,
            RepetitionPenalty = RepetitionPenalty ?? d.RepetitionPenalty,
            Seed = Seed ?? d.Seed,
            StopStrings = Stop,
        };
        try { o.Validate(); }
        catch (XmtfException e) { throw new ApiException(422, e.Message); }
        return o;
    }
}
