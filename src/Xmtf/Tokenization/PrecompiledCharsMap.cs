using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Xmtf.Tokenization;

/// <summary>
/// sentencepiece's precompiled normalization rules (<c>precompiled_charsmap</c>, e.g. nmt_nfkc): a
/// little-endian uint32 trie size, a Darts-clone double-array trie over UTF-8 keys whose values are
/// offsets into the blob that follows, which holds the NUL-terminated replacement strings.
/// </summary>
internal sealed class PrecompiledCharsMap
{
    readonly uint[] _units;
    readonly byte[] _normalized;

    public PrecompiledCharsMap(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 4) throw new FormatException("precompiled charsmap shorter than its header");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize > blob.Length - 4)
            throw new FormatException($"precompiled charsmap trie size {trieSize} does not fit the blob ({blob.Length} bytes)");
        _units = new uint[trieSize / 4];
        for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob[(4 + 4 * i)..]);
        _normalized = blob[(4 + (int)trieSize)..].ToArray();
    }

    /// <summary>
    /// Darts-clone <c>commonPrefixSearch</c>: the rules whose keys are prefixes of <paramref name="key"/>,
    /// shortest first. Returns the key length and replacement of the longest (or, with
    /// <paramref name="first"/>, the shortest) one; length 0 when none matches.
    /// </summary>
    public int Match(ReadOnlySpan<byte> key, bool first, out ReadOnlySpan<byte> replacement)
    {
        replacement = default;
        int matched = 0;
        if (_units.Length == 0) return 0;
        uint pos = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            pos ^= key[i];
            if (pos >= _units.Length) return matched;
            uint unit = _units[pos];
            if ((unit & 0x800000FFu) != key[i]) return matched; // label mismatch
            pos ^= Offset(unit);
            if ((unit >> 8 & 1) == 0) continue; // no leaf here
            if (pos >= _units.Length) return matched;
            int value = (int)(_units[pos] & 0x7FFFFFFFu);
            if (value >= _normalized.Length) throw new XmtfException($"corrupt precompiled charsmap: replacement offset {value} out of range");
            var rest = _normalized.AsSpan(value);
            int end = rest.IndexOf((byte)0);
            replacement = end < 0 ? rest : rest[..end];
            matched = i + 1;
            if (first) return matched;
        }
        return matched;
    }

    static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    /// <summary>
    /// HF tokenizers' <c>Precompiled</c> normalizer: per extended grapheme cluster shorter than 6 UTF-8
    /// bytes, the first (shortest) matching rule replaces the whole cluster; otherwise each character is
    /// mapped on its own. sentencepiece instead takes the longest match at every byte position
    /// (see <see cref="SentencePieceNormalizer"/>), so e.g. a halfwidth kana + voiced mark (6 bytes)
    /// composes there but not here.
    /// </summary>
    public string NormalizeGraphemes(string text)
    {
        var sb = new StringBuilder(text.Length);
        Span<byte> buf = stackalloc byte[64];
        for (int i = 0; i < text.Length;)
        {
            int len = StringInfo.GetNextTextElementLength(text, i);
            var grapheme = text.AsSpan(i, len);
            i += len;
            if (Encoding.UTF8.GetByteCount(grapheme) < 6 && Map(grapheme, buf, sb)) continue;
            for (int j = 0; j < grapheme.Length;)
            {
                int n = j + 1 < grapheme.Length && char.IsSurrogatePair(grapheme[j], grapheme[j + 1]) ? 2 : 1;
                if (!Map(grapheme.Slice(j, n), buf, sb)) sb.Append(grapheme.Slice(j, n));
                j += n;
            }
        }
        return sb.ToString();
    }

    bool Map(ReadOnlySpan<char> chunk, Span<byte> buf, StringBuilder sb)
    {
        int n = Encoding.UTF8.GetBytes(chunk, buf);
        if (Match(buf[..n], first: true, out var replacement) == 0) return false;
        sb.Append(Encoding.UTF8.GetString(replacement));
        return true;
    }
}
