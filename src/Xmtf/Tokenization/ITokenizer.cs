namespace Xmtf.Tokenization;

/// <summary>
/// Text to token ids and back, behaving exactly as the matching transformers tokenizer
/// (<c>tokenizer(text).input_ids</c> and <c>tokenizer.decode(ids, ...)</c>).
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer knows (may be smaller than the model's padded vocabulary).</summary>
    int VocabSize { get; }
    int? EosTokenId { get; }
    int? PadTokenId { get; }
    int? BosTokenId { get; }
    int? UnkTokenId { get; }

    /// <summary>Ids as <c>tokenizer(text).input_ids</c>; with <paramref name="addSpecialTokens"/> false, as
    /// <c>tokenizer(text, add_special_tokens=False)</c>.</summary>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>Token strings (pieces) for ids, as <c>convert_ids_to_tokens</c>.</summary>
    string IdToToken(int id);

    /// <summary>As <c>tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces)</c>;
    /// <paramref name="cleanUpSpaces"/> null uses the tokenizer's configured default.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null);
}
