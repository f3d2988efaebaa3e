using System.Text.Json;
using System.Text.Json.Nodes;
using Xmtf.Tokenization;

namespace Xmtf.Tests.Tokenization;

public class ByteLevelBpeTokenizerTests
{
    static readonly JsonElement Golden = Fixtures.Json("bloom-tokenizer", "golden.json");

    public static TheoryData<string> Dirs => new() { "bloom-tokenizer", "tiny-bloom" };

    static ByteLevelBpeTokenizer Load(string dir) => ByteLevelBpeTokenizer.FromFile(Fixtures.Path(dir, "tokenizer.json"));
    static readonly Lazy<ByteLevelBpeTokenizer> Bloom = new(() => Load("bloom-tokenizer"));

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    // Each golden test gathers every mismatch so that one run shows them all.
    [Theory, MemberData(nameof(Dirs))]
    public void Encodes_every_golden_string(string dir)
    {
        var tok = Load(dir);
        var bad = new List<string>();
        foreach (var c in Golden.GetProperty("cases").EnumerateArray())
        {
            var ids = tok.Encode(c.GetProperty("text").GetString()!);
            if (!ids.SequenceEqual(Ints(c.GetProperty("ids")))) bad.Add($"{c.GetProperty("i")}: [{string.Join(",", ids)}]");
            else if (!ids.Select(tok.IdToToken).SequenceEqual(Strings(c.GetProperty("tokens")))) bad.Add($"{c.GetProperty("i")}: tokens");
        }
        Assert.Empty(bad);
    }

    [Theory, MemberData(nameof(Dirs))]
    public void Decodes_every_golden_string(string dir)
    {
        var tok = Load(dir);
        var bad = new List<string>();
        var cases = Golden.GetProperty("cases").EnumerateArray().Concat(Golden.GetProperty("id_list_decodes").GetProperty("cases").EnumerateArray());
        foreach (var c in cases)
        {
            var ids = Ints(c.GetProperty("ids"));
            if (tok.Decode(ids) != c.GetProperty("decode").GetString()) bad.Add($"[{string.Join(",", ids)}] decode");
            if (tok.Decode(ids, skipSpecialTokens: true) != c.GetProperty("decode_skip_special").GetString()) bad.Add($"[{string.Join(",", ids)}] skip");
            if (!ids.Select(tok.IdToToken).SequenceEqual(Strings(c.GetProperty("tokens")))) bad.Add($"[{string.Join(",", ids)}] tokens");
        }
        Assert.Empty(bad);
    }

    [Fact]
    public void Knows_bloom_special_tokens_and_adds_none()
    {
        var tok = Bloom.Value;
        Assert.Equal((512, 0, 1, 2, 3), (tok.VocabSize, tok.UnkTokenId, tok.BosTokenId, tok.EosTokenId, tok.PadTokenId));
        Assert.Equal(tok.Encode("Hello world"), tok.Encode("Hello world", addSpecialTokens: false));
    }

    [Fact]
    public void Decode_drops_unknown_ids_and_cleans_up_only_when_asked()
    {
        var tok = Bloom.Value;
        var ids = tok.Encode("Hello , world !");
        Assert.Equal("Hello , world !", tok.Decode([.. ids, 100_000]));
        Assert.Equal("Hello, world!", tok.Decode(ids, cleanUpSpaces: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.IdToToken(512));
    }

    [Fact]
    public void Translates_oniguruma_nested_classes()
    {
        Assert.Equal(@" ?[^(\s|.,!?…。，、।۔،)]+", ByteLevelBpeTokenizer.TranslateOnigPattern(@" ?[^(\s|[.,!?…。，、।۔،])]+"));
        Assert.Equal(@"[a\-b]", ByteLevelBpeTokenizer.TranslateOnigPattern(@"[a[-b]]"));
    }

    [Fact]
    public void Added_tokens_honour_lstrip_rstrip_and_single_word()
    {
        var tok = WithEdit(j =>
        {
            var added = j["added_tokens"]!.AsArray();
            added.Add(new JsonObject { ["id"] = 512, ["content"] = "<mask>", ["special"] = true, ["lstrip"] = true, ["rstrip"] = true, ["normalized"] = false });
            added.Add(new JsonObject { ["id"] = 513, ["content"] = "ab", ["special"] = false, ["single_word"] = true, ["normalized"] = true });
        });
        var bloom = Bloom.Value;
        Assert.Equal([.. bloom.Encode("a"), 512, .. bloom.Encode("b")], tok.Encode("a  <mask> b"));
        Assert.Equal([513, .. bloom.Encode(" "), 513], tok.Encode("ab ab"));
        Assert.Equal(bloom.Encode("xab"), tok.Encode("xab"));
        Assert.Equal("a<mask>b", tok.Decode(tok.Encode("a  <mask> b")));
        Assert.Equal("ab", tok.Decode(tok.Encode("a  <mask> b"), skipSpecialTokens: true));
    }

    [Fact]
    public void Template_processing_adds_its_tokens()
    {
        var tok = WithEdit(j => j["post_processor"] = JsonNode.Parse("""
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
             "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
            """));
        var body = Bloom.Value.Encode("hi");
        Assert.Equal([1, .. body, 2], tok.Encode("hi"));
        Assert.Equal(body, tok.Encode("hi", addSpecialTokens: false));
    }

    [Fact]
    public void Ignore_merges_takes_a_whole_word_from_the_vocabulary()
    {
        var tok = WithEdit(j =>
        {
            j["model"]!["vocab"]!["abcd"] = 512;
            j["model"]!["ignore_merges"] = true;
        });
        Assert.Equal([512], tok.Encode("abcd"));
        Assert.Equal(Bloom.Value.Encode(" abcd"), tok.Encode(" abcd"));
    }

    [Fact]
    public void Split_on_a_string_can_remove_the_delimiter()
    {
        var tok = WithEdit(j => j["pre_tokenizer"]!["pretokenizers"]![0] = JsonNode.Parse(
            """{"type": "Split", "pattern": {"String": "."}, "behavior": "Removed", "invert": false}"""));
        var bloom = Bloom.Value;
        Assert.Equal([.. bloom.Encode("ab"), .. bloom.Encode("c")], tok.Encode("ab..c"));
    }

    public static TheoryData<string> Malformed => new() { "not json", "{}", """{"model": null}""", "null" };

    [Theory, MemberData(nameof(Malformed))]
    public void Malformed_file_is_refused(string content) =>
        Assert.Throws<XmtfException>(() => WithFile(content, ByteLevelBpeTokenizer.FromFile));

    public static TheoryData<string, string, string> Unsupported => new()
    {
        { "normalizer", """{"type": "NFKC"}""", "normalizer NFKC" },
        { "pre_tokenizer", """{"type": "Whitespace"}""", "pre-tokenizer Whitespace" },
        { "pre_tokenizer", """{"type": "ByteLevel", "add_prefix_space": false}""", "use_regex true" }, // its default
        { "pre_tokenizer.pretokenizers.0.behavior", "\"Contiguous\"", "behavior Contiguous" },
        { "pre_tokenizer.pretokenizers.0.pattern.Regex", "\"[a\"", "Unterminated [] set" },
        { "post_processor", """{"type": "BertProcessing"}""", "post-processor BertProcessing" },
        { "decoder", """{"type": "WordPiece"}""", "decoder WordPiece" },
        { "model.type", "\"Unigram\"", "model Unigram" },
        { "model.dropout", "0.1", "dropout" },
        { "model.merges", """["a zz"]""", "'zz' is not in the vocabulary" },
        { "model.merges", """["abc"]""", "not a pair" },
        { "model.vocab", """{"a": 0}""", "lacks the byte-level character" },
        { "added_tokens", """[{"content": "<x>"}]""", "'id' is missing" },
    };

    /// <summary>Each case sets one dotted path of BLOOM's file to a JSON value, so one setting at a time goes wrong.</summary>
    [Theory, MemberData(nameof(Unsupported))]
    public void Unsupported_or_broken_setting_is_refused(string path, string value, string reason)
    {
        var e = Assert.Throws<XmtfException>(() => WithEdit(j =>
        {
            var keys = path.Split('.');
            JsonNode node = j;
            foreach (var key in keys[..^1]) node = int.TryParse(key, out var i) ? node[i]! : node[key]!;
            node[keys[^1]] = JsonNode.Parse(value);
        }));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(reason, e.Message);
    }

    static ByteLevelBpeTokenizer WithEdit(Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path("bloom-tokenizer", "tokenizer.json")))!.AsObject();
        edit(json);
        return WithFile(json.ToJsonString(), ByteLevelBpeTokenizer.FromFile);
    }

    static T WithFile<T>(string content, Func<string, T> load)
    {
        var dir = Directory.CreateTempSubdirectory("xmtf-bpe");
        try
        {
            var path = Path.Combine(dir.FullName, "tokenizer.json");
            File.WriteAllText(path, content);
            return load(path);
        }
        finally { dir.Delete(recursive: true); }
    }
}
