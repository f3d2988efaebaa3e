using System.Text.Json;
using Xmtf.Tokenization;
using static Xmtf.Tests.Tokenization.T5TokenizerGoldenTests;

namespace Xmtf.Tests.Tokenization;

/// <summary>Every string of tiny-mt5/tokenizer_json_golden.json through the tokenizer.json (fast) tokenizer.</summary>
public class T5TokenizerFastGoldenTests
{
    static readonly T5TokenizerFast Tok = T5TokenizerFast.FromFile(Fixtures.Path("tiny-mt5", "tokenizer.json"));
    static readonly T5TokenizerFast Hf443 = T5TokenizerFast.FromFile(Fixtures.Path("tokenizer", "tokenizer_hf443.json"));
    static readonly JsonElement Golden = Fixtures.Json("tiny-mt5", "tokenizer_json_golden.json");

    public static TheoryData<string, int> Entries()
    {
        var data = new TheoryData<string, int>();
        foreach (var section in new[] { "cases", "prompts", "id_list_decodes" })
        {
            var list = section == "cases" ? Golden.GetProperty("cases") : Golden.GetProperty(section).GetProperty("cases");
            for (int i = 0; i < list.GetArrayLength(); i++) data.Add(section, i);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void MatchesGolden(string section, int i)
    {
        var c = section == "cases" ? Golden.GetProperty("cases")[i] : Golden.GetProperty(section).GetProperty("cases")[i];
        var ids = Ints(c, "ids");
        var failures = new List<string>();
        void Check(string field, string? expected, string actual)
        {
            if (expected != actual) failures.Add($"{field}: expected {Show(expected)}, got {Show(actual)}");
        }
        string? text = c.TryGetProperty("text", out var t) ? t.GetString() : null;
        if (text is not null) Check("ids", Show(ids), Show(Tok.Encode(text)));
        Check("tokens", string.Join(" ", c.GetProperty("tokens").EnumerateArray().Select(x => x.GetString())),
            string.Join(" ", ids.Select(Tok.IdToToken)));
        Check("decode", c.GetProperty("decode").GetString(), Tok.Decode(ids, cleanUpSpaces: false));
        Check("decode_skip_special", c.GetProperty("decode_skip_special").GetString(), Tok.Decode(ids, skipSpecialTokens: true, cleanUpSpaces: false));
        Check("hf_decode", c.GetProperty("hf_decode").GetString(), Tok.Decode(ids));
        Check("hf_decode_skip_special", c.GetProperty("hf_decode_skip_special").GetString(), Tok.Decode(ids, skipSpecialTokens: true));
        Assert.True(failures.Count == 0, $"{section}[{i}] {Show(text)}:\n" + string.Join("\n", failures));
    }

    /// <summary>The transformers 4.37-4.43 layout gives the mt0 layout's ids except where the golden lists a difference.</summary>
    [Fact]
    public void Hf443LayoutIds()
    {
        var differs = Golden.GetProperty("hf443_layout").GetProperty("differs_from_tokenizer_json").EnumerateArray()
            .ToDictionary(d => d.GetProperty("i").GetInt32(), d => Ints(d, "hf443_layout_ids"));
        var failures = new List<string>();
        foreach (var c in Golden.GetProperty("cases").EnumerateArray())
        {
            int i = c.GetProperty("i").GetInt32();
            var expected = differs.GetValueOrDefault(i) ?? Ints(c, "ids");
            var actual = Hf443.Encode(c.GetProperty("text").GetString()!);
            if (!expected.SequenceEqual(actual)) failures.Add($"case {i}: expected {Show(expected)}, got {Show(actual)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void UnsupportedModelIsAnXmtfException()
    {
        var json = JsonDocument.Parse("""{"model": {"type": "WordPiece"}}""").RootElement;
        Assert.Throws<XmtfException>(() => T5TokenizerFast.FromJson(json, true, "test"));
    }
}
