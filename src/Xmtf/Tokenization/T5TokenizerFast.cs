using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Xmtf.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> with a <c>Unigram</c> model, run as the tokenizers library does
/// (what transformers' <c>T5TokenizerFast</c> returns): added tokens cut out of the raw text, normalizer
/// <c>Precompiled</c> / <c>Replace</c> / <c>Strip</c> (alone or in a <c>Sequence</c>), <c>Metaspace</c>
/// pre-tokenizer and decoder, <c>TemplateProcessing</c> post-processor. Covers both the layout of the mt0
/// repositories and the one transformers 4.37-4.43 writes.
/// </summary>
public sealed class T5TokenizerFast : ITokenizer
{
    enum Prepend { Always, First, Never }

    readonly string[] _vocab;
    readonly Unigram _unigram;
    readonly string[] _addedTokens;
    readonly int[] _addedIds;
    readonly Dictionary<int, string> _addedById = [];
    readonly HashSet<string> _specialTokens = new(StringComparer.Ordinal);
    readonly Func<string, string> _normalize;
    readonly char _replacement;
    readonly Prepend _prepend;
    readonly bool _split;
    readonly int[] _prefixIds = [], _suffixIds = [];
    readonly char _decoderReplacement;
    readonly bool _decoderStripsFirst;
    readonly bool _cleanUp;

    public int VocabSize { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? BosTokenId => null;
    public int? UnkTokenId { get; }

    /// <summary>Loads <c>tokenizer.json</c>; <paramref name="cleanUpTokenizationSpaces"/> is the
    /// <c>clean_up_tokenization_spaces</c> default of <see cref="Decode"/>.</summary>
    public static T5TokenizerFast FromFile(string tokenizerJsonPath, bool cleanUpTokenizationSpaces = true)
    {
        using var doc = Tokenizers.ParseJson(tokenizerJsonPath);
        return FromJson(doc.RootElement, cleanUpTokenizationSpaces, tokenizerJsonPath);
    }

    /// <summary>Builds the tokenizer from a parsed <c>tokenizer.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static T5TokenizerFast FromJson(JsonElement root, bool cleanUpTokenizationSpaces, string source)
    {
        try { return new T5TokenizerFast(root, cleanUpTokenizationSpaces); }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            throw new XmtfException($"{source}: unsupported or malformed tokenizer.json: {e.Message}", e);
        }
    }

    T5TokenizerFast(JsonElement root, bool cleanUp)
    {
        _cleanUp = cleanUp;

        var model = root.GetProperty("model");
        if (Str(model, "type") != "Unigram") throw new FormatException($"model type {Str(model, "type")} is not Unigram");
        if (model.TryGetProperty("byte_fallback", out var bf) && bf.GetBoolean()) throw new FormatException("byte_fallback is not supported");
        var vocab = model.GetProperty("vocab");
        _vocab = new string[vocab.GetArrayLength()];
        var scores = new double[_vocab.Length];
        int i = 0;
        foreach (var entry in vocab.EnumerateArray())
        {
            _vocab[i] = entry[0].GetString()!;
            scores[i++] = entry[1].GetDouble();
        }
        if (!model.TryGetProperty("unk_id", out var unk) || unk.ValueKind != JsonValueKind.Number)
            throw new FormatException("the Unigram model has no unk_id");
        int unkId = unk.GetInt32();
        if ((uint)unkId >= _vocab.Length) throw new FormatException($"unk_id {unkId} outside the vocabulary");
        // HF Unigram: every vocabulary entry is matchable; unknown characters score min - 10.
        _unigram = new Unigram(_vocab, scores, null, unkId, scores.Min() - 10.0);

        var added = root.GetProperty("added_tokens").EnumerateArray().ToArray();
        foreach (var a in added)
        {
            foreach (var flag in new[] { "lstrip", "rstrip", "single_word", "normalized" })
                if (a.TryGetProperty(flag, out var f) && f.GetBoolean()) throw new FormatException($"added token option {flag} is not supported");
            _addedById[a.GetProperty("id").GetInt32()] = Str(a, "content");
            if (a.GetProperty("special").GetBoolean()) _specialTokens.Add(Str(a, "content"));
        }
        _addedTokens = [.. added.Select(a => Str(a, "content"))];
        _addedIds = [.. added.Select(a => a.GetProperty("id").GetInt32())];
        VocabSize = Math.Max(_vocab.Length, _addedIds.DefaultIfEmpty(-1).Max() + 1);

        _normalize = Normalizer(root.GetProperty("normalizer"));

        var pre = root.GetProperty("pre_tokenizer");
        if (Str(pre, "type") != "Metaspace") throw new FormatException($"pre_tokenizer {Str(pre, "type")} is not Metaspace");
        (_replacement, _prepend) = MetaspaceOptions(pre);
        _split = !pre.TryGetProperty("split", out var split) || split.GetBoolean();

        var dec = root.GetProperty("decoder");
        if (Str(dec, "type") != "Metaspace") throw new FormatException($"decoder {Str(dec, "type")} is not Metaspace");
        Prepend decPrepend;
        (_decoderReplacement, decPrepend) = MetaspaceOptions(dec);
        _decoderStripsFirst = decPrepend != Prepend.Never;

        var post = root.GetProperty("post_processor");
        if (post.ValueKind != JsonValueKind.Null)
            (_prefixIds, _suffixIds) = Template(post);

        EosTokenId = TokenId("</s>");
        PadTokenId = TokenId("<pad>");
        UnkTokenId = unkId;
    }

    int? TokenId(string token)
    {
        int i = Array.IndexOf(_addedTokens, token);
        if (i >= 0) return _addedIds[i];
        return _unigram.TryGetId(token, out int id) ? id : null;
    }

    static string Str(JsonElement e, string name) => e.GetProperty(name).GetString() ?? throw new FormatException($"{name} is null");

    static Func<string, string> Normalizer(JsonElement n)
    {
        if (n.ValueKind == JsonValueKind.Null) return s => s;
        switch (Str(n, "type"))
        {
            case "Sequence":
                var steps = n.GetProperty("normalizers").EnumerateArray().Select(Normalizer).ToArray();
                return s => steps.Aggregate(s, (acc, step) => step(acc));
            case "Precompiled":
                var map = new PrecompiledCharsMap(Convert.FromBase64String(Str(n, "precompiled_charsmap")));
                return map.NormalizeGraphemes;
            case "Replace":
                var pattern = n.GetProperty("pattern");
                string content = Str(n, "content");
                if (pattern.TryGetProperty("String", out var literal))
                {
                    string from = literal.GetString()!;
                    return s => s.Replace(from, content, StringComparison.Ordinal);
                }
                var regex = new Regex(Str(pattern, "Regex"), RegexOptions.CultureInvariant);
                return s => regex.Replace(s, content.Replace("$", "$$"));
            case "Strip":
                bool left = n.GetProperty("strip_left").GetBoolean(), right = n.GetProperty("strip_right").GetBoolean();
                return s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s;
            case var t: throw new FormatException($"normalizer {t} is not supported");
        }
    }

    /// <summary>Metaspace's replacement character and prepend scheme (legacy <c>add_prefix_space</c> true = always).</summary>
    static (char, Prepend) MetaspaceOptions(JsonElement e)
    {
        string rep = Str(e, "replacement");
        if (rep.Length != 1) throw new FormatException($"Metaspace replacement \"{rep}\" is not one UTF-16 character");
        var scheme = e.TryGetProperty("prepend_scheme", out var ps)
            ? Enum.Parse<Prepend>(ps.GetString()!, ignoreCase: true)
            : e.TryGetProperty("add_prefix_space", out var aps) && !aps.GetBoolean() ? Prepend.Never : Prepend.Always;
        return (rep[0], scheme);
    }

    /// <summary>The ids TemplateProcessing's <c>single</c> template puts before and after <c>$A</c>.</summary>
    static (int[], int[]) Template(JsonElement post)
    {
        if (Str(post, "type") != "TemplateProcessing") throw new FormatException($"post_processor {Str(post, "type")} is not supported");
        var specials = post.GetProperty("special_tokens");
        List<int> prefix = [], suffix = [];
        var current = prefix;
        foreach (var item in post.GetProperty("single").EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _)) current = suffix;
            else current.AddRange(specials.GetProperty(Str(item.GetProperty("SpecialToken"), "id"))
                .GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        }
        return ([.. prefix], [.. suffix]);
    }

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens) ids.AddRange(_prefixIds);
        foreach (var (start, length, token) in TokenizerText.Split(text, _addedTokens))
        {
            if (token >= 0) { ids.Add(_addedIds[token]); continue; }
            // Metaspace: spaces become ▁, a ▁ is prepended, and each ▁ starts a new word.
            var s = _normalize(text.Substring(start, length)).Replace(' ', _replacement);
            if (s.Length > 0 && s[0] != _replacement && (_prepend == Prepend.Always || _prepend == Prepend.First && start == 0))
                s = _replacement + s;
            var rest = s.AsSpan();
            while (!rest.IsEmpty)
            {
                int next = _split ? rest[1..].IndexOf(_replacement) + 1 : 0;
                var word = next > 0 ? rest[..next] : rest;
                _unigram.Encode(word, ids);
                rest = rest[word.Length..];
            }
        }
        if (addSpecialTokens) ids.AddRange(_suffixIds);
        return [.. ids];
    }

    string? Token(int id) => _addedById.TryGetValue(id, out var t) ? t : (uint)id < (uint)_vocab.Length ? _vocab[id] : null;

    /// <inheritdoc/>
    public string IdToToken(int id) =>
        Token(id) ?? throw new XmtfException($"token id {id} is outside the vocabulary (0..{VocabSize - 1})");

    /// <inheritdoc/>
    /// <remarks>As the tokenizers library, ids it does not know are skipped; the Metaspace decoder drops every
    /// <c>▁</c> of the first token and turns the others into spaces.</remarks>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null)
    {
        var sb = new StringBuilder();
        bool first = true;
        foreach (int id in ids)
        {
            var token = Token(id);
            if (token is null || skipSpecialTokens && _specialTokens.Contains(token)) continue;
            foreach (char c in token)
            {
                if (c != _decoderReplacement) sb.Append(c);
                else if (!(first && _decoderStripsFirst)) sb.Append(' ');
            }
            first = false;
        }
        var text = sb.ToString();
        return cleanUpSpaces ?? _cleanUp ? TokenizerText.CleanUp(text) : text;
    }
}
