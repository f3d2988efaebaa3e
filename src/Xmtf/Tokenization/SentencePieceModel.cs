using System.Buffers.Binary;
using System.Text;

namespace Xmtf.Tokenization;

/// <summary>Piece types of sentencepiece's <c>ModelProto.SentencePiece.Type</c>.</summary>
internal enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>
/// The parts of a sentencepiece <c>ModelProto</c> (<c>spiece.model</c>) that encoding and decoding use,
/// read with a minimal protobuf wire-format parser. Field numbers and defaults follow
/// sentencepiece_model.proto.
/// </summary>
internal sealed class SentencePieceModel
{
    public required string[] Pieces { get; init; }
    public required float[] Scores { get; init; }
    public required PieceType[] Types { get; init; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string UnkSurface { get; private set; } = " \u2047 ";
    public bool ByteFallback { get; private set; }
    public int ModelType { get; private set; } = 1; // 1 = unigram
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public static SentencePieceModel Load(string path)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) { throw new XmtfException($"{path}: cannot read: {e.Message}", e); }
        try { return Parse(data); }
        catch (FormatException e) { throw new XmtfException($"{path}: not a valid sentencepiece model: {e.Message}", e); }
    }

    /// <summary>Parses a serialized <c>ModelProto</c>; throws <see cref="FormatException"/> on malformed data.</summary>
    public static SentencePieceModel Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        var trainer = ReadOnlySpan<byte>.Empty;
        var normalizer = ReadOnlySpan<byte>.Empty;
        var r = new ProtoReader(data);
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2):
                    var (piece, score, type) = ReadPiece(r.Bytes());
                    pieces.Add(piece); scores.Add(score); types.Add(type);
                    break;
                // Only one trainer/normalizer spec is expected; the last one wins (a merge would be exact protobuf).
                case (2, 2): trainer = r.Bytes(); break;
                case (3, 2): normalizer = r.Bytes(); break;
                default: r.Skip(wire); break;
            }
        }
        if (pieces.Count == 0) throw new FormatException("no pieces");
        var m = new SentencePieceModel { Pieces = [.. pieces], Scores = [.. scores], Types = [.. types] };
        m.ReadTrainerSpec(trainer);
        m.ReadNormalizerSpec(normalizer);
        return m;
    }

    static (string, float, PieceType) ReadPiece(ReadOnlySpan<byte> data)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        var r = new ProtoReader(data);
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2): piece = r.String(); break;
                case (2, 5): score = BitConverter.Int32BitsToSingle((int)r.Fixed32()); break;
                case (3, 0):
                    type = (PieceType)(int)r.Varint();
                    if (!Enum.IsDefined(type)) throw new FormatException($"piece type {(int)type}");
                    break;
                default: r.Skip(wire); break;
            }
        }
        return (piece, score, type);
    }

    void ReadTrainerSpec(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data);
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (3, 0): ModelType = (int)r.Varint(); break;
                case (35, 0): ByteFallback = r.Varint() != 0; break;
                case (40, 0): UnkId = (int)r.Varint(); break;
                case (41, 0): BosId = (int)r.Varint(); break;
                case (42, 0): EosId = (int)r.Varint(); break;
                case (43, 0): PadId = (int)r.Varint(); break;
                case (44, 2): UnkSurface = r.String(); break;
                default: r.Skip(wire); break;
            }
        }
    }

    void ReadNormalizerSpec(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data);
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2): NormalizerName = r.String(); break;
                case (2, 2): PrecompiledCharsMap = r.Bytes().ToArray(); break;
                case (3, 0): AddDummyPrefix = r.Varint() != 0; break;
                case (4, 0): RemoveExtraWhitespaces = r.Varint() != 0; break;
                case (5, 0): EscapeWhitespaces = r.Varint() != 0; break;
                default: r.Skip(wire); break;
            }
        }
    }

    /// <summary>Protobuf wire-format reader over one message; every read is bounds-checked.</summary>
    ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        static readonly UTF8Encoding StrictUtf8 = new(false, true);
        readonly ReadOnlySpan<byte> _data = data;
        int _pos;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= _data.Length) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0) throw new FormatException($"field number 0 at byte {_pos}");
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length) throw new FormatException("truncated varint");
                byte b = _data[_pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw new FormatException("varint longer than 10 bytes");
        }

        public uint Fixed32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        public ReadOnlySpan<byte> Bytes()
        {
            ulong len = Varint();
            if (len > (ulong)(_data.Length - _pos)) throw new FormatException($"length {len} runs past the end");
            return Take((int)len);
        }

        public string String()
        {
            try { return StrictUtf8.GetString(Bytes()); }
            catch (DecoderFallbackException e) { throw new FormatException("invalid UTF-8 in a string field", e); }
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Take(8); break;
                case 2: Bytes(); break;
                case 5: Take(4); break;
                default: throw new FormatException($"unsupported wire type {wire}");
            }
        }

        ReadOnlySpan<byte> Take(int n)
        {
            if (n > _data.Length - _pos) throw new FormatException("truncated message");
            var s = _data.Slice(_pos, n);
            _pos += n;
            return s;
        }
    }
}
