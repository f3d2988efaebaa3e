using Xmtf.Tokenization;

namespace Xmtf.Tests.Tokenization;

public class TokenizersLoadTests
{
    [Fact]
    public void PrefersTokenizerJson()
    {
        var dir = Fixtures.Path("tiny-mt5");
        Assert.IsType<T5TokenizerFast>(Tokenizers.Load(dir));
        Assert.IsType<T5Tokenizer>(Tokenizers.Load(dir, forceSentencePiece: true));
    }

    [Fact]
    public void BothKindsGiveTheModelGoldenIds()
    {
        var dir = Fixtures.Path("tiny-mt5");
        foreach (var tok in new[] { Tokenizers.Load(dir), Tokenizers.Load(dir, forceSentencePiece: true) })
        {
            Assert.Equal((1600, 1, 0, 2, (int?)null), (tok.VocabSize, tok.EosTokenId, tok.PadTokenId, tok.UnkTokenId, tok.BosTokenId));
            foreach (var p in Fixtures.Json("tiny-mt5", "golden.json").GetProperty("prompts").EnumerateArray())
                Assert.Equal(T5TokenizerGoldenTests.Ints(p, "input_ids"), tok.Encode(p.GetProperty("text").GetString()!));
        }
    }

    [Fact]
    public void SentencePieceOnlyDirectory()
    {
        Assert.IsType<T5Tokenizer>(Tokenizers.Load(Fixtures.Path("tokenizer")));
    }

    [Fact]
    public void MissingFilesNameWhatIsMissing()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            Assert.Contains("spiece.model", Assert.Throws<XmtfException>(() => Tokenizers.Load(dir)).Message);
            Assert.Contains("spiece.model", Assert.Throws<XmtfException>(() => Tokenizers.Load(dir, forceSentencePiece: true)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BpeTokenizerJsonLoadsTheByteLevelTokenizer()
    {
        var tok = Tokenizers.Load(Fixtures.Path("bloom-tokenizer"));
        Assert.IsType<ByteLevelBpeTokenizer>(tok);
        Assert.Equal(2, tok.EosTokenId);
    }
}
