using System.Runtime.InteropServices;
using System.Text;

namespace Xmtf.Tokenization;

/// <summary>
/// sentencepiece's <c>Normalizer::Normalize</c>: at every byte position the longest precompiled rule
/// (or a user-defined piece, kept verbatim) replaces the prefix; then leading, trailing and repeated
/// spaces are dropped, a dummy-prefix <c>▁</c> is added and spaces become <c>▁</c>, per the model's
/// normalizer_spec.
/// </summary>
internal sealed class SentencePieceNormalizer(
    PrecompiledCharsMap? charsMap, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces,
    IEnumerable<string> userDefinedPieces)
{
    static readonly byte[] SpaceSymbol = "\u2581"u8.ToArray();
    readonly byte[][] _userDefined = [.. userDefinedPieces.Select(Encoding.UTF8.GetBytes)];

    public string Normalize(string text)
    {
        ReadOnlySpan<byte> input = Encoding.UTF8.GetBytes(text);
        if (removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                int len = NormalizePrefix(input, out var piece);
                if (!piece.SequenceEqual(" "u8)) break;
                input = input[len..];
            }
        }
        if (input.IsEmpty) return "";

        var output = new List<byte>(input.Length * 3 / 2 + 3);
        if (addDummyPrefix) output.AddRange(escapeWhitespaces ? SpaceSymbol : " "u8);
        bool prevSpace = removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            int len = NormalizePrefix(input, out var piece);
            input = input[len..];
            if (prevSpace) piece = piece.TrimStart((byte)' ');
            if (!piece.IsEmpty)
            {
                foreach (byte b in piece)
                {
                    if (escapeWhitespaces && b == ' ') output.AddRange(SpaceSymbol);
                    else output.Add(b);
                }
                prevSpace = piece[^1] == ' ';
            }
            if (!removeExtraWhitespaces) prevSpace = false;
        }
        var result = CollectionsMarshal.AsSpan(output);
        if (removeExtraWhitespaces)
        {
            var space = escapeWhitespaces ? SpaceSymbol : " "u8;
            while (result.EndsWith(space)) result = result[..^space.Length];
        }
        return Encoding.UTF8.GetString(result);
    }

    /// <summary>Normalizes the first unit of <paramref name="input"/>; returns how many bytes it consumed.</summary>
    int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> normalized)
    {
        int best = 0;
        foreach (var p in _userDefined)
            if (p.Length > best && input.StartsWith(p)) best = p.Length;
        if (best > 0)
        {
            normalized = input[..best];
            return best;
        }
        if (charsMap is not null)
        {
            int matched = charsMap.Match(input, first: false, out normalized);
            if (matched > 0) return matched;
        }
        int charLen = Utf8Length(input[0]);
        normalized = input[..Math.Min(charLen, input.Length)];
        return normalized.Length;
    }

    static int Utf8Length(byte lead) => lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
