namespace Xmtf.Tokenization;

/// <summary>Text steps transformers applies around every tokenizer model.</summary>
internal static class TokenizerText
{
    /// <summary>
    /// Cuts <paramref name="text"/> at literal occurrences of <paramref name="tokens"/> (leftmost, then
    /// longest), as transformers' added-tokens trie and HF tokenizers' added vocabulary do. Yields each
    /// non-empty stretch with <c>Token</c> = -1, and each occurrence with the index of its token.
    /// </summary>
    public static IEnumerable<(int Start, int Length, int Token)> Split(string text, IReadOnlyList<string> tokens)
    {
        int from = 0;
        for (int i = 0; i < text.Length; i++)
        {
            int token = -1;
            for (int t = 0; t < tokens.Count; t++)
                if (tokens[t].Length > 0 && (token < 0 || tokens[t].Length > tokens[token].Length)
                    && text.AsSpan(i).StartsWith(tokens[t], StringComparison.Ordinal))
                    token = t;
            if (token < 0) continue;
            if (i > from) yield return (from, i - from, -1);
            yield return (i, tokens[token].Length, token);
            from = i + tokens[token].Length;
            i = from - 1;
        }
        if (from < text.Length) yield return (from, text.Length - from, -1);
    }

    /// <summary>transformers' <c>clean_up_tokenization</c>: removes the space before punctuation and contractions.</summary>
    public static string CleanUp(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
