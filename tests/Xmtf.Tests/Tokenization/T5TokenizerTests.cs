using System.Text.Json;
using Xmtf.Tokenization;

namespace Xmtf.Tests.Tokenization;

/// <summary>Every case of tokenizer/tokenizer_golden.json through the slow (sentencepiece) tokenizer.</summary>
public class T5TokenizerGoldenTests
{
    static readonly T5Tokenizer Tok = T5Tokenizer.FromFile(Fixtures.Path("tokenizer", "spiece.model"));
    static readonly JsonElement Cases = Fixtures.Json("tokenizer", "tokenizer_golden.json").GetProperty("cases");

    public static TheoryData<int> CaseIndices() => new(Enumerable.Range(0, Cases.GetArrayLength()));

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void MatchesGolden(int i)
    {
        var c = Cases[i];
        var text = c.GetProperty("text").GetString()!;
        var hfIds = Ints(c, "hf_ids");
        var failures = new List<string>();
        void Check<T>(string field, T expected, T actual)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual) && !(expected is int[] e && actual is int[] a && e.SequenceEqual(a)))
                failures.Add($"{field}: expected {Show(expected)}, got {Show(actual)}");
        }
        Check("normalized", c.GetProperty("normalized").GetString(), Tok.Normalize(text));
        Check("sp_ids", Ints(c, "sp_ids"), Tok.EncodeSentencePiece(text));
        Check("sp_decode", c.GetProperty("sp_decode").GetString(), Tok.DecodePieces(Ints(c, "sp_ids").Select(Tok.IdToToken)));
        Check("hf_ids", hfIds, Tok.Encode(text));
        Check("hf_tokens", string.Join(" ", c.GetProperty("hf_tokens").EnumerateArray().Select(t => t.GetString())),
            string.Join(" ", hfIds.Select(Tok.IdToToken)));
        Check("hf_decode", c.GetProperty("hf_decode").GetString(), Tok.Decode(hfIds));
        Check("hf_decode_skip_special", c.GetProperty("hf_decode_skip_special").GetString(), Tok.Decode(hfIds, skipSpecialTokens: true));
        Check("hf_decode_skip_special_no_cleanup", c.GetProperty("hf_decode_skip_special_no_cleanup").GetString(),
            Tok.Decode(hfIds, skipSpecialTokens: true, cleanUpSpaces: false));
        Assert.True(failures.Count == 0, $"case {i} {Show(text)}:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void ModelGoldenPromptIds()
    {
        foreach (var p in Fixtures.Json("tiny-mt5", "golden.json").GetProperty("prompts").EnumerateArray())
            Assert.Equal(Ints(p, "input_ids"), Tok.Encode(p.GetProperty("text").GetString()!));
    }

    [Fact]
    public void ModelGoldenGreedyText()
    {
        foreach (var g in Fixtures.Json("tiny-mt5", "golden.json").GetProperty("greedy").EnumerateArray())
        {
            var seq = Ints(g, "sequence");
            Assert.Equal(g.GetProperty("text").GetString(), Tok.Decode(seq, skipSpecialTokens: true));
            Assert.Equal(g.GetProperty("text_with_special").GetString(), Tok.Decode(seq));
        }
    }

    [Fact]
    public void TruncatedModelIsAnXmtfException()
    {
        var path = System.IO.Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, File.ReadAllBytes(Fixtures.Path("tokenizer", "spiece.model"))[..1000]);
            Assert.Throws<XmtfException>(() => T5Tokenizer.FromFile(path));
        }
        finally { File.Delete(path); }
    }

    internal static int[] Ints(JsonElement e, string name) => [.. e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32())];

    internal static string Show<T>(T v) => v is int[] a ? "[" + string.Join(",", a) + "]" : JsonSerializer.Serialize(v);
}
