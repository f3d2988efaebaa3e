namespace Xmtf.Generation;

/// <summary>
/// What the generation loop needs from an architecture. Generation (greedy, sampling, beam search, the
/// logits processors, stopping) is written once against this; mT5 and BLOOM each implement it in their
/// own file.
/// </summary>
public interface IGenerativeModel : IDisposable
{
    ModelFamily Family { get; }
    /// <summary>Width of a logits row (the model's vocabulary, possibly padded past the tokenizer's).</summary>
    int VocabSize { get; }
    /// <summary>Special ids and defaults from config.json and generation_config.json.</summary>
    GenerationDefaults Defaults { get; }

    /// <summary>
    /// Starts decoding a batch: each prompt becomes <paramref name="copies"/> consecutive rows (beams or
    /// samples). The session can hold <paramref name="maxNewTokens"/> generated tokens per row.
    /// </summary>
    IDecoderSession Start(IReadOnlyList<int[]> prompts, int copies, int maxNewTokens);
}

/// <summary>The per-row decoding state (KV caches) of one batch.</summary>
public interface IDecoderSession : IDisposable
{
    int Rows { get; }

    /// <summary>
    /// The ids each row starts with, as transformers' <c>input_ids</c> at the first step: the decoder start
    /// token for mT5, the (left-padded) prompt for BLOOM. Repetition penalties and n-gram bans see these.
    /// </summary>
    int[] StartIds(int row);

    /// <summary>Runs the prompt (BLOOM) or the decoder start token (mT5); logits [Rows, VocabSize] of the first new token.</summary>
    ReadOnlySpan<float> Prefill();

    /// <summary>Appends one token per row; logits [Rows, VocabSize] of the next token.</summary>
    ReadOnlySpan<float> Step(ReadOnlySpan<int> tokens);

    /// <summary>Row i becomes a copy of old row <c>sources[i]</c> (beam search).</summary>
    void Reorder(ReadOnlySpan<int> sources);
}

/// <summary>Ids and defaults a checkpoint declares for generation.</summary>
public sealed record GenerationDefaults
{
    public int[] EosTokenIds { get; init; } = [];
    public int PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    public int? DecoderStartTokenId { get; init; }
    /// <summary>generation_config.json's own options (max_new_tokens, num_beams, ...), applied before the user's.</summary>
    public GenerationOptions Options { get; init; } = new();
}
