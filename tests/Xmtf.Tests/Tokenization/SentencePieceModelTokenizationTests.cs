using Xmtf.Tokenization;

namespace Xmtf.Tests.Tokenization;

public class SentencePieceModelTokenizationTests
{
    [Fact]
    public void ReadsSpecsOfTheFixture()
    {
        var m = SentencePieceModel.Load(Fixtures.Path("tokenizer", "spiece.model"));
        Assert.Equal(1600, m.Pieces.Length);
        Assert.Equal((0, 1, 2, -1), (m.PadId, m.EosId, m.UnkId, m.BosId));
        Assert.Equal(("<pad>", "</s>", "<unk>"), (m.Pieces[0], m.Pieces[1], m.Pieces[2]));
        Assert.Equal((PieceType.Control, PieceType.Control, PieceType.Unknown, PieceType.Normal),
            (m.Types[0], m.Types[1], m.Types[2], m.Types[3]));
        Assert.Equal((1, "nmt_nfkc", true, true, true), (m.ModelType, m.NormalizerName, m.AddDummyPrefix, m.RemoveExtraWhitespaces, m.EscapeWhitespaces));
        Assert.NotEmpty(m.PrecompiledCharsMap);
        Assert.Equal(-2.5983384f, m.Scores[3]);
    }

    [Theory]
    [InlineData(new byte[] { 0x0A, 0x05, 0x0A })]        // piece length runs past the end
    [InlineData(new byte[] { 0x0A, 0x02, 0x15, 0x00 })]  // truncated float
    [InlineData(new byte[] { 0x0B })]                    // group wire type
    [InlineData(new byte[] { 0x12, 0x00 })]              // no pieces
    public void MalformedProtoIsAnXmtfException(byte[] data)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, data);
            Assert.Throws<XmtfException>(() => SentencePieceModel.Load(path));
        }
        finally { File.Delete(path); }
    }
}
