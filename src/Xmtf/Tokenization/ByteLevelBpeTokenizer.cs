using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Xmtf.Tokenization;

/// <summary>
/// Byte-level BPE tokenizer read from a Hugging Face <c>tokenizer.json</c> in BLOOM's configuration, giving the
/// ids and texts of the Rust <c>tokenizers</c> library (what <c>BloomTokenizerFast</c> returns).
/// </summary>
/// <remarks>
/// Supported: no normalizer; pre-tokenizer <c>Split</c> (regex or string, <c>Isolated</c> or <c>Removed</c>)
/// steps followed by <c>ByteLevel</c> with <c>use_regex</c> false; model <c>BPE</c> with a complete byte-level
/// alphabet; post-processor <c>ByteLevel</c>, <c>TemplateProcessing</c> or a <c>Sequence</c> of them; decoder
/// <c>ByteLevel</c>. Anything else is refused with an <see cref="XmtfException"/> rather than approximated.
/// The BPE merges themselves run in Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>, which reproduces the
/// Rust library on every golden string once it is handed one pre-tokenized word at a time.
/// Split regexes run in .NET's engine, which sees UTF-16 code units where Oniguruma sees code points: patterns
/// whose classes or properties must match astral-plane characters may split those differently.
/// </remarks>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    /// <summary>GPT-2's <c>bytes_to_unicode</c>: printable Latin-1 bytes map to themselves, the rest to U+0100 on.</summary>
    static readonly char[] ByteToChar = BuildByteToChar();
    static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<int, string> _vocabById;
    readonly Dictionary<int, string> _addedById = new();
    readonly HashSet<string> _specialContents = new();
    // Rust matches non-normalized added tokens on the raw text first, then normalized ones in what is left.
    readonly AddedToken[] _rawAdded;
    readonly AddedToken[] _normalizedAdded;
    readonly List<Func<string, IEnumerable<string>>> _preTokenizers = new();
    bool? _addPrefixSpace; // null until the ByteLevel pre-tokenizer is seen
    readonly BpeTokenizer _bpe;
    readonly bool _ignoreMerges;
    readonly List<int> _prefixIds = new(), _suffixIds = new();
    readonly bool _cleanUpSpaces;

    sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip);

    /// <inheritdoc/>
    public int VocabSize { get; }
    /// <inheritdoc/>
    public int? EosTokenId { get; }
    /// <inheritdoc/>
    public int? PadTokenId { get; }
    /// <inheritdoc/>
    public int? BosTokenId { get; }
    /// <inheritdoc/>
    public int? UnkTokenId { get; }

    /// <summary>Reads <paramref name="tokenizerJsonPath"/>, plus <c>tokenizer_config.json</c> beside it when present
    /// (special token names, <c>clean_up_tokenization_spaces</c>).</summary>
    /// <exception cref="XmtfException">The file is missing, malformed, or uses a component this class does not support.</exception>
    public static ByteLevelBpeTokenizer FromFile(string tokenizerJsonPath)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(tokenizerJsonPath))?.AsObject()
                ?? throw new XmtfException("the file holds null, not a tokenizer");
            var configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerJsonPath))!, "tokenizer_config.json");
            var config = File.Exists(configPath) ? JsonNode.Parse(File.ReadAllText(configPath))?.AsObject() : null;
            return new ByteLevelBpeTokenizer(root, config);
        }
        catch (Exception e) when (e is XmtfException or IOException or UnauthorizedAccessException or JsonException
                                      or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new XmtfException($"{tokenizerJsonPath}: cannot load the tokenizer: {e.Message}", e);
        }
    }

    ByteLevelBpeTokenizer(JsonObject root, JsonObject? config)
    {
        if (root["normalizer"] is { } normalizer)
            throw new XmtfException($"normalizer {TypeOf(normalizer)} is not supported (only null)");
        if (TypeOf(Required(root, "decoder")) != "ByteLevel")
            throw new XmtfException($"decoder {TypeOf(root["decoder"]!)} is not supported (only ByteLevel)");
        AddPreTokenizer(Required(root, "pre_tokenizer"));
        if (_addPrefixSpace is null) throw new XmtfException("the pre-tokenizer has no ByteLevel step: this is not a byte-level BPE tokenizer");

        var model = Required(root, "model").AsObject();
        if (model["type"] is { } t && t.GetValue<string>() != "BPE") throw new XmtfException($"model {t} is not supported (only BPE)");
        if (model["dropout"]?.GetValue<double>() is > 0) throw new XmtfException("BPE dropout is not supported (it is random)");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model[key] is not null) throw new XmtfException($"BPE {key} is not supported");
        _ignoreMerges = model["ignore_merges"]?.GetValue<bool>() ?? false;
        _vocab = Required(model, "vocab").AsObject().ToDictionary(p => p.Key, p => Value<int>(p.Value, $"vocab entry '{p.Key}'"));
        _vocabById = _vocab.ToDictionary(p => p.Value, p => p.Key);
        // With every byte's character in the vocabulary BPE never meets an unknown character, so unk_token,
        // fuse_unk and byte_fallback cannot change an id; refusing incomplete alphabets keeps that true.
        if (ByteToChar.FirstOrDefault(c => !_vocab.ContainsKey(c.ToString())) is var missing and not '\0')
            throw new XmtfException($"the vocabulary lacks the byte-level character U+{(int)missing:X4}");
        _bpe = BpeTokenizer.Create(new BpeOptions(_vocab) { Merges = ReadMerges(Required(model, "merges").AsArray(), _vocab), ByteLevel = true });

        var added = new List<(AddedToken Token, bool Normalized)>();
        foreach (var node in root["added_tokens"]?.AsArray() ?? [])
        {
            var a = (node ?? throw new XmtfException("an added token is null")).AsObject();
            var token = new AddedToken(Required(a, "id").GetValue<int>(), Required(a, "content").GetValue<string>(),
                Flag(a, "single_word"), Flag(a, "lstrip"), Flag(a, "rstrip"));
            if (token.Content.Length == 0) continue; // Rust ignores empty added tokens
            _addedById[token.Id] = token.Content;
            if (Flag(a, "special")) _specialContents.Add(token.Content);
            added.Add((token, a["normalized"]?.GetValue<bool>() ?? !Flag(a, "special")));
        }
        _rawAdded = added.Where(x => !x.Normalized).Select(x => x.Token).ToArray();
        _normalizedAdded = added.Where(x => x.Normalized).Select(x => x.Token).ToArray();
        VocabSize = _vocab.Keys.Union(_addedById.Values).Count();

        if (root["post_processor"] is { } post) AddPostProcessor(post);

        // BloomTokenizerFast defaults clean_up_tokenization_spaces to False; a config may still turn it on.
        _cleanUpSpaces = config?["clean_up_tokenization_spaces"]?.GetValue<bool>() ?? false;
        UnkTokenId = SpecialId(config, "unk_token", "<unk>");
        BosTokenId = SpecialId(config, "bos_token", "<s>");
        EosTokenId = SpecialId(config, "eos_token", "</s>");
        PadTokenId = SpecialId(config, "pad_token", "<pad>");
    }

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens) ids.AddRange(_prefixIds);
        foreach (var (piece, addedId) in SplitAddedTokens(text, _rawAdded))
        {
            if (addedId is int id) { ids.Add(id); continue; }
            foreach (var (part, normalizedId) in SplitAddedTokens(piece, _normalizedAdded))
            {
                if (normalizedId is int nid) { ids.Add(nid); continue; }
                IEnumerable<string> words = [part];
                foreach (var step in _preTokenizers) words = words.SelectMany(step).ToList();
                foreach (var word in words) EncodeWord(word, ids);
            }
        }
        if (addSpecialTokens) ids.AddRange(_suffixIds);
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public string IdToToken(int id) => TryIdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(id), id, "no token has this id");

    /// <inheritdoc/>
    /// <remarks>Ids no token has are dropped, as the Rust library does.</remarks>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (TryIdToToken(id) is not { } token || skipSpecialTokens && _specialContents.Contains(token)) continue;
            // The ByteLevel decoder keeps a token's own UTF-8 when any of its characters is outside the byte alphabet.
            if (token.All(CharToByte.ContainsKey)) bytes.AddRange(token.Select(c => CharToByte[c]));
            else bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        // .NET replaces each maximal invalid subsequence with one U+FFFD, exactly as Rust's String::from_utf8_lossy.
        var text = Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpSpaces ?? _cleanUpSpaces ? CleanUpTokenization(text) : text;
    }

    string? TryIdToToken(int id) => _addedById.TryGetValue(id, out var a) ? a : _vocabById.GetValueOrDefault(id);

    void EncodeWord(string word, List<int> ids)
    {
        if (_ignoreMerges && _vocab.TryGetValue(ToByteLevel(word), out var whole)) ids.Add(whole);
        // The word is already pre-tokenized; ML.Tokenizers would otherwise apply its default whitespace split.
        else ids.AddRange(_bpe.EncodeToIds(word, considerPreTokenization: false));
    }

    /// <summary>Cuts <paramref name="text"/> around added tokens as Rust's AddedVocabulary does: leftmost-longest,
    /// non-overlapping matches; <c>single_word</c> drops matches touching a word character; <c>lstrip</c> /
    /// <c>rstrip</c> pull adjacent whitespace into the token. A null id marks ordinary text.</summary>
    static List<(string Text, int? Id)> SplitAddedTokens(string text, AddedToken[] tokens)
    {
        var pieces = new List<(string, int?)>();
        int searchFrom = 0, emitted = 0;
        while (FindLeftmostLongest(text, searchFrom, tokens) is var (start, token))
        {
            var stop = start + token.Content.Length;
            searchFrom = stop;
            if (token.SingleWord && (start > 0 && IsWordChar(text, start - 1, before: true) || stop < text.Length && IsWordChar(text, stop, before: false)))
                continue;
            if (token.LStrip)
                while (start > emitted && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (emitted < start) pieces.Add((text[emitted..start], null));
            pieces.Add((text[start..stop], token.Id));
            emitted = stop;
        }
        if (emitted < text.Length) pieces.Add((text[emitted..], null));
        return pieces;
    }

    static (int Start, AddedToken Token)? FindLeftmostLongest(string text, int from, AddedToken[] tokens)
    {
        for (var i = from; i < text.Length; i++)
        {
            AddedToken? best = null;
            foreach (var t in tokens)
                if (t.Content.Length > (best?.Content.Length ?? 0) && text.AsSpan(i).StartsWith(t.Content, StringComparison.Ordinal))
                    best = t;
            if (best is not null) return (i, best);
        }
        return null;
    }

    /// <summary>Rust regex's <c>\w</c> (alphabetic, marks, decimal digits, connector punctuation, join controls)
    /// for the code point just before or at <paramref name="index"/>.</summary>
    static bool IsWordChar(string text, int index, bool before)
    {
        var ok = before ? Rune.DecodeLastFromUtf16(text.AsSpan(0, index + 1), out var r, out _)
                        : Rune.DecodeFromUtf16(text.AsSpan(index), out r, out _);
        return ok == System.Buffers.OperationStatus.Done && (Rune.IsLetter(r) || r.Value is 0x200C or 0x200D ||
            Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                or UnicodeCategory.EnclosingMark or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber
                or UnicodeCategory.ConnectorPunctuation);
    }

    void AddPreTokenizer(JsonNode node)
    {
        switch (TypeOf(node))
        {
            case "Sequence":
                foreach (var step in Required(node.AsObject(), "pretokenizers").AsArray()) AddPreTokenizer(Value(step, "pre-tokenizer step"));
                break;
            case "Split":
                AddSplit(node.AsObject());
                break;
            case "ByteLevel":
                if (node["use_regex"]?.GetValue<bool>() ?? true)
                    throw new XmtfException("ByteLevel pre-tokenizer with use_regex true is not supported (GPT-2's regex classifies astral-plane characters differently in .NET)");
                if (_addPrefixSpace is not null) throw new XmtfException("the pre-tokenizer has two ByteLevel steps");
                _addPrefixSpace = Flag(node.AsObject(), "add_prefix_space");
                _preTokenizers.Add(ByteLevelStep);
                break;
            default:
                throw new XmtfException($"pre-tokenizer {TypeOf(node)} is not supported");
        }
    }

    /// <summary>The ByteLevel pre-tokenizer's text part; its byte mapping happens in the BPE model.</summary>
    IEnumerable<string> ByteLevelStep(string piece) => [_addPrefixSpace == true && !piece.StartsWith(' ') ? " " + piece : piece];

    void AddSplit(JsonObject split)
    {
        // ML.Tokenizers maps bytes inside the model, so a Split would see raw text where Rust shows it byte-level characters.
        if (_addPrefixSpace is not null) throw new XmtfException("a Split pre-tokenizer after ByteLevel is not supported");
        var pattern = Required(split, "pattern").AsObject();
        var regex = pattern["Regex"] is { } r ? new Regex(TranslateOnigPattern(r.GetValue<string>()), RegexOptions.CultureInvariant)
            : new Regex(Regex.Escape(Required(pattern, "String").GetValue<string>()));
        var behavior = Required(split, "behavior").GetValue<string>();
        if (behavior is not ("Isolated" or "Removed")) throw new XmtfException($"Split behavior {behavior} is not supported (only Isolated and Removed)");
        // Isolated keeps matches and gaps alike, so only Removed needs to know which side is the delimiter.
        var removeMatches = behavior == "Removed" && !Flag(split, "invert");
        var removeGaps = behavior == "Removed" && Flag(split, "invert");
        _preTokenizers.Add(text => SplitByRegex(text, regex, removeMatches, removeGaps));
    }

    static IEnumerable<string> SplitByRegex(string text, Regex regex, bool removeMatches, bool removeGaps)
    {
        var pieces = new List<string>();
        var last = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue; // Rust drops empty pieces
            if (m.Index > last && !removeGaps) pieces.Add(text[last..m.Index]);
            if (!removeMatches) pieces.Add(m.Value);
            last = m.Index + m.Length;
        }
        if (last < text.Length && !removeGaps) pieces.Add(text[last..]);
        return pieces;
    }

    /// <summary>Rewrites an Oniguruma (Ruby syntax) pattern for .NET: a class nested in a class is a union there
    /// (<c>[^(\s|[.,])]</c>), so its members are moved into the enclosing class.</summary>
    internal static string TranslateOnigPattern(string pattern)
    {
        var sb = new StringBuilder();
        var depth = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            var next = i + 1 < pattern.Length ? pattern[i + 1] : '\0';
            if (c == '\\')
            {
                sb.Append(c).Append(next);
                i++;
            }
            else if (c == '[')
            {
                if (depth > 0 && next is '^' or ':') throw new XmtfException($"regex {pattern}: negated nested classes and POSIX brackets are not supported");
                if (depth++ == 0) sb.Append(c);
            }
            else if (c == ']' && depth > 0)
            {
                if (--depth == 0) sb.Append(c);
            }
            else if (c == '&' && next == '&' && depth > 0) throw new XmtfException($"regex {pattern}: class intersection is not supported");
            // A '-' at the edge of a nested class is literal; inlined it could form a range, so escape it.
            else if (c == '-' && depth > 1 && (pattern[i - 1] == '[' || next == ']')) sb.Append(@"\-");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    void AddPostProcessor(JsonNode node)
    {
        switch (TypeOf(node))
        {
            case "ByteLevel": // only trims offsets
                break;
            case "Sequence":
                foreach (var p in Required(node.AsObject(), "processors").AsArray()) AddPostProcessor(Value(p, "post-processor step"));
                break;
            case "TemplateProcessing":
                var special = Required(node.AsObject(), "special_tokens").AsObject();
                var target = _prefixIds;
                foreach (var item in Required(node.AsObject(), "single").AsArray())
                {
                    if (item?["Sequence"] is not null) target = _suffixIds;
                    else if (item?["SpecialToken"]?["id"]?.GetValue<string>() is { } name)
                        target.AddRange(Required(Required(special, name).AsObject(), "ids").AsArray().Select(x => Value<int>(x, "special token id")));
                    else throw new XmtfException($"TemplateProcessing item {item?.ToJsonString()} is not understood");
                }
                break;
            default:
                throw new XmtfException($"post-processor {TypeOf(node)} is not supported");
        }
    }

    static List<string> ReadMerges(JsonArray merges, Dictionary<string, int> vocab)
    {
        var list = new List<string>(merges.Count);
        foreach (var m in merges)
        {
            // Older files write "a b"; newer ones [a, b]. ML.Tokenizers takes the string form.
            var parts = m is JsonArray pair ? pair.Select(x => Value<string>(x, "merge part")).ToArray() : Value<string>(m, "merge").Split(' ');
            if (parts.Length != 2 || parts.Any(p => p.Length == 0 || p.Contains(' ')))
                throw new XmtfException($"merge {m?.ToJsonString()} is not a pair of space-free tokens");
            if (parts.Append(parts[0] + parts[1]).FirstOrDefault(p => !vocab.ContainsKey(p)) is { } unknown)
                throw new XmtfException($"merge {m?.ToJsonString()}: '{unknown}' is not in the vocabulary");
            list.Add($"{parts[0]} {parts[1]}");
        }
        return list;
    }

    /// <summary>The id of a special token named in tokenizer_config.json (a string or an AddedToken object), else of
    /// BloomTokenizerFast's default name.</summary>
    int? SpecialId(JsonObject? config, string key, string fallback)
    {
        var name = config is not null && config.TryGetPropertyValue(key, out var node)
            ? node is JsonObject o ? o["content"]?.GetValue<string>() : node?.GetValue<string>()
            : fallback;
        if (name is null) return null;
        foreach (var (id, content) in _addedById) if (content == name) return id;
        return _vocab.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>transformers' <c>clean_up_tokenization</c>.</summary>
    static string CleanUpTokenization(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    static string ToByteLevel(string word) => string.Concat(Encoding.UTF8.GetBytes(word).Select(b => ByteToChar[b]));

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
            map[b] = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE ? (char)b : (char)next++;
        return map;
    }

    static JsonNode Required(JsonObject o, string key) => o[key] ?? throw new XmtfException($"'{key}' is missing or null");
    static JsonNode Value(JsonNode? n, string what) => n ?? throw new XmtfException($"{what} is null");
    static T Value<T>(JsonNode? n, string what) => Value(n, what).GetValue<T>();
    static bool Flag(JsonObject o, string key) => o[key]?.GetValue<bool>() ?? false;
    static string TypeOf(JsonNode node) => node["type"]?.GetValue<string>() ?? "(without type)";
}
