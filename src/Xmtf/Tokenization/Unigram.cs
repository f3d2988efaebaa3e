namespace Xmtf.Tokenization;

/// <summary>
/// Unigram segmentation as sentencepiece's <c>EncodeOptimized</c> and HF tokenizers' <c>Unigram</c> do it:
/// Viterbi over every vocabulary piece that starts at each character, plus an unknown node of one
/// character where no single-character piece exists; ties keep the earlier candidate; consecutive
/// unknown characters come out as one unknown id. Path scores add in double (sentencepiece adds floats);
/// the two can only disagree on ties closer than float precision.
/// </summary>
internal sealed class Unigram
{
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    readonly bool[]? _matchable;
    readonly double[] _scores;
    readonly int _maxPieceLength;
    readonly int _unkId;
    readonly double _unkScore;

    /// <param name="pieces">Piece strings by id.</param>
    /// <param name="scores">Score of each piece by id.</param>
    /// <param name="matchable">Which ids segmentation may produce (null: all); the unknown id comes from unknown nodes regardless.</param>
    /// <param name="unkId">Id emitted for characters no piece covers.</param>
    /// <param name="unkScore">Score of such an unknown node.</param>
    public Unigram(IReadOnlyList<string> pieces, double[] scores, bool[]? matchable, int unkId, double unkScore)
    {
        var dict = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int id = 0; id < pieces.Count; id++)
        {
            dict.TryAdd(pieces[id], id); // first id wins on duplicates
            if (matchable?[id] ?? true) _maxPieceLength = Math.Max(_maxPieceLength, pieces[id].Length);
        }
        _matchable = matchable;
        _lookup = dict.GetAlternateLookup<ReadOnlySpan<char>>();
        _scores = scores;
        _unkId = unkId;
        _unkScore = unkScore;
    }

    /// <summary>Id of <paramref name="piece"/> (any piece, matchable or not).</summary>
    public bool TryGetId(ReadOnlySpan<char> piece, out int id) => _lookup.TryGetValue(piece, out id);

    /// <summary>Appends the best segmentation of <paramref name="text"/> to <paramref name="ids"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> ids)
    {
        int n = text.Length;
        if (n == 0) return;
        var best = new double[n + 1];
        var start = new int[n + 1];
        var id = new int[n + 1];
        Array.Fill(start, -1);
        start[0] = 0;
        for (int s = 0; s < n; s++)
        {
            if (start[s] < 0) continue; // inside a surrogate pair
            int charLen = s + 1 < n && char.IsSurrogatePair(text[s], text[s + 1]) ? 2 : 1;
            bool hasSingle = false;
            for (int len = 1; len <= Math.Min(_maxPieceLength, n - s); len++)
            {
                if (!_lookup.TryGetValue(text.Slice(s, len), out int pid) || _matchable?[pid] == false) continue;
                Relax(s + len, best[s] + _scores[pid], s, pid);
                hasSingle |= len == charLen;
            }
            if (!hasSingle) Relax(s + charLen, best[s] + _unkScore, s, _unkId);
        }

        int first = ids.Count;
        for (int e = n; e > 0; e = start[e])
        {
            // Consecutive unknown nodes are one piece (sentencepiece's merge, HF's fuse_unk).
            if (id[e] == _unkId && ids.Count > first && ids[^1] == _unkId) continue;
            ids.Add(id[e]);
        }
        ids.Reverse(first, ids.Count - first);

        void Relax(int end, double score, int from, int pieceId)
        {
            if (start[end] >= 0 && score <= best[end]) return;
            best[end] = score;
            start[end] = from;
            id[end] = pieceId;
        }
    }
}
