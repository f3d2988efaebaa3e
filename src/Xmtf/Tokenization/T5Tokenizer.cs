using System.Text;

namespace Xmtf.Tokenization;

/// <summary>
/// transformers' slow <c>T5Tokenizer</c> over a sentencepiece unigram <c>spiece.model</c>, as mT5/mt0
/// configure it (<c>legacy=True</c>, <c>extra_ids=0</c>, special tokens <c>&lt;/s&gt;</c>,
/// <c>&lt;unk&gt;</c>, <c>&lt;pad&gt;</c>): literal special-token text is cut out first and every other
/// chunk goes through sentencepiece on its own; <c>&lt;/s&gt;</c> is appended unless already last.
/// </summary>
public sealed class T5Tokenizer : ITokenizer
{
    const char SpaceSymbol = '\u2581';
    readonly SentencePieceModel _model;
    readonly SentencePieceNormalizer _normalizer;
    readonly Unigram _unigram;
    readonly string[] _specialTokens;
    readonly bool _cleanUp;

    public int VocabSize => _model.Pieces.Length;
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? BosTokenId => null;
    public int? UnkTokenId { get; }

    /// <summary>Loads <c>spiece.model</c>; <paramref name="cleanUpTokenizationSpaces"/> is the
    /// <c>clean_up_tokenization_spaces</c> default of <see cref="Decode"/>.</summary>
    public static T5Tokenizer FromFile(string spieceModelPath, bool cleanUpTokenizationSpaces = true) =>
        new(SentencePieceModel.Load(spieceModelPath), cleanUpTokenizationSpaces, spieceModelPath);

    T5Tokenizer(SentencePieceModel model, bool cleanUp, string path)
    {
        if (model.ModelType != 1) throw new XmtfException($"{path}: sentencepiece model type {model.ModelType} is not unigram (1)");
        if (model.ByteFallback) throw new XmtfException($"{path}: byte_fallback sentencepiece models are not supported");
        _model = model;
        _cleanUp = cleanUp;

        PrecompiledCharsMap? charsMap = null;
        try { if (model.PrecompiledCharsMap.Length > 0) charsMap = new PrecompiledCharsMap(model.PrecompiledCharsMap); }
        catch (FormatException e) { throw new XmtfException($"{path}: {e.Message}", e); }
        var userDefined = Enumerable.Range(0, model.Pieces.Length).Where(i => model.Types[i] == PieceType.UserDefined);
        _normalizer = new SentencePieceNormalizer(charsMap, model.AddDummyPrefix, model.RemoveExtraWhitespaces,
            model.EscapeWhitespaces, userDefined.Select(i => model.Pieces[i]));

        // sentencepiece: min/max over normal pieces; unknown nodes score min - 10; user-defined pieces get a
        // bonus (byte length * max - 0.1) so they always win; only normal and user-defined pieces are matched.
        var normal = Enumerable.Range(0, model.Pieces.Length).Where(i => model.Types[i] == PieceType.Normal).ToArray();
        if (normal.Length == 0) throw new XmtfException($"{path}: the sentencepiece model has no normal pieces");
        float min = normal.Min(i => model.Scores[i]), max = normal.Max(i => model.Scores[i]);
        var scores = new double[model.Pieces.Length];
        for (int i = 0; i < scores.Length; i++)
            scores[i] = model.Types[i] == PieceType.UserDefined
                ? Encoding.UTF8.GetByteCount(model.Pieces[i]) * max - 0.1f
                : model.Scores[i];
        if ((uint)model.UnkId >= model.Pieces.Length || model.Types[model.UnkId] != PieceType.Unknown)
            throw new XmtfException($"{path}: unk_id {model.UnkId} is not an unknown-type piece");
        var matchable = model.Types.Select(t => t is PieceType.Normal or PieceType.UserDefined).ToArray();
        _unigram = new Unigram(model.Pieces, scores, matchable, model.UnkId, min - 10f);

        EosTokenId = PieceId("</s>");
        PadTokenId = PieceId("<pad>");
        UnkTokenId = PieceId("<unk>");
        if (EosTokenId is null) throw new XmtfException($"{path}: the vocabulary has no </s> piece");
        _specialTokens = [.. new[] { "</s>", "<unk>", "<pad>" }.Where(t => PieceId(t) is not null)];
    }

    int? PieceId(string piece) => _unigram.TryGetId(piece, out int id) ? id : null;

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        foreach (var (start, length, token) in TokenizerText.Split(text, _specialTokens))
        {
            if (token >= 0) ids.Add(PieceId(_specialTokens[token])!.Value);
            else _unigram.Encode(Normalize(text.Substring(start, length)), ids);
        }
        if (addSpecialTokens && (ids.Count == 0 || ids[^1] != EosTokenId)) ids.Add(EosTokenId!.Value);
        return [.. ids];
    }

    /// <summary>sentencepiece's own <c>encode</c> (no special-token splitting, no eos).</summary>
    internal int[] EncodeSentencePiece(string text)
    {
        var ids = new List<int>();
        _unigram.Encode(Normalize(text), ids);
        return [.. ids];
    }

    /// <summary>The normalized string sentencepiece segments.</summary>
    internal string Normalize(string text) => _normalizer.Normalize(text);

    /// <inheritdoc/>
    public string IdToToken(int id) => (uint)id < (uint)_model.Pieces.Length
        ? _model.Pieces[id]
        : throw new XmtfException($"token id {id} is outside the vocabulary (0..{_model.Pieces.Length - 1})");

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpSpaces = null)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
            if (!skipSpecialTokens || !(id == EosTokenId || id == PadTokenId || id == UnkTokenId))
                tokens.Add(IdToToken(id));
        string text = tokens.Count == 0 ? "" : TokensToString(tokens);
        return cleanUpSpaces ?? _cleanUp ? TokenizerText.CleanUp(text) : text;
    }

    /// <summary>
    /// T5Tokenizer's <c>convert_tokens_to_string</c>: the first token loses its <c>▁</c>; special tokens are
    /// glued to the sentencepiece-decoded text before them, with a space in front of that text unless the
    /// previous token was special; the result is stripped.
    /// </summary>
    string TokensToString(List<string> tokens)
    {
        if (tokens[0].StartsWith(SpaceSymbol)) tokens[0] = tokens[0][1..];
        var sb = new StringBuilder();
        var pieces = new List<string>();
        bool prevSpecial = false;
        foreach (var token in tokens)
        {
            if (_specialTokens.Contains(token))
            {
                if (!prevSpecial) sb.Append(' ');
                sb.Append(DecodePieces(pieces)).Append(token);
                pieces.Clear();
                prevSpecial = true;
            }
            else
            {
                pieces.Add(token);
                prevSpecial = false;
            }
        }
        sb.Append(DecodePieces(pieces));
        return PythonStrip(sb.ToString());
    }

    /// <summary>sentencepiece's <c>decode</c> of piece strings: control pieces vanish, the unknown piece
    /// reads as unk_surface (other unknown strings verbatim), the leading <c>▁</c> is dropped, <c>▁</c> → space.</summary>
    internal string DecodePieces(IEnumerable<string> pieces)
    {
        var sb = new StringBuilder();
        foreach (var piece in pieces)
        {
            int id = PieceId(piece) ?? _model.UnkId;
            switch (_model.Types[id])
            {
                case PieceType.Control: break;
                case PieceType.Unknown: sb.Append(piece == _model.Pieces[id] ? _model.UnkSurface : piece); break;
                default:
                    var s = sb.Length == 0 && piece.StartsWith(SpaceSymbol) ? piece[1..] : piece;
                    sb.Append(s.Replace(SpaceSymbol, ' '));
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.strip()</c>: char.IsWhiteSpace plus U+001C..U+001F.</summary>
    static string PythonStrip(string s)
    {
        static bool Space(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';
        int a = 0, b = s.Length;
        while (a < b && Space(s[a])) a++;
        while (b > a && Space(s[b - 1])) b--;
        return s[a..b];
    }
}
