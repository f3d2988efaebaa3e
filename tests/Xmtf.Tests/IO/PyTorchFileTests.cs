using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using Xmtf.IO;

namespace Xmtf.Tests.IO;

public sealed class PyTorchFileTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("xmtf-pt").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Temp(string name) => Path.Combine(_dir, name);

    [Theory]
    [InlineData("tiny-mt5", "")]
    [InlineData("tiny-bloom", "transformer.")]
    public void Fixture_MatchesSafetensorsByteForByte(string model, string safetensorsPrefix)
    {
        using var bin = new PyTorchFile(Fixtures.Path(model, "pytorch_model.bin"));
        using var st = new SafeTensorsFile(Fixtures.Path(model, "model.safetensors"));
        // model.safetensors drops the tied aliases of shared.weight; the .bin keeps them.
        string StName(string name) => name.EndsWith("embed_tokens.weight") ? "shared.weight" : safetensorsPrefix + name;
        Assert.Equal(st.Tensors.Keys.Order(), bin.Tensors.Keys.Select(StName).Distinct().Order());
        foreach (var (name, info) in bin.Tensors)
        {
            var expected = st.Tensors[StName(name)];
            Assert.Equal(expected.DType, info.DType);
            Assert.Equal(expected.Shape, info.Shape);
            Assert.True(st.GetBytes(expected.Name).SequenceEqual(bin.GetBytes(name)), name);
        }
    }

    [Fact]
    public void Fixture_TiedWeightsShareOneStorage()
    {
        using var bin = new PyTorchFile(Fixtures.Path("tiny-mt5", "pytorch_model.bin"));
        var shared = bin.GetBytes("shared.weight");
        Assert.True(SameAddress(shared, bin.GetBytes("encoder.embed_tokens.weight")));
        Assert.True(SameAddress(shared, bin.GetBytes("decoder.embed_tokens.weight")));
        Assert.False(SameAddress(shared, bin.GetBytes("lm_head.weight")));
    }

    static unsafe nint Address(ReadOnlySpan<byte> a) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(a));

    static bool SameAddress(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => Address(a) == Address(b);

    [Fact]
    public void ShardedBin_LoadsThroughCheckpoint()
    {
        using var st = new SafeTensorsFile(Fixtures.Path("tiny-mt5", "model.safetensors"));
        var names = st.Tensors.Keys.Order().ToList();
        var shards = new[] { names[..(names.Count / 2)], names[(names.Count / 2)..] };
        var weightMap = new Dictionary<string, string>();
        for (int i = 0; i < shards.Length; i++)
        {
            var file = $"pytorch_model-0000{i + 1}-of-00002.bin";
            TorchWriter.Write(Temp(file), shards[i].Select(n => (n, st.Tensors[n].DType, st.Tensors[n].Shape, st.GetBytes(n).ToArray())));
            foreach (var n in shards[i]) weightMap[n] = file;
        }
        File.WriteAllText(Temp("pytorch_model.bin.index.json"), JsonSerializer.Serialize(new { metadata = new { }, weight_map = weightMap }));
        File.Copy(Fixtures.Path("tiny-mt5", "config.json"), Temp("config.json"));
        File.Copy(Fixtures.Path("tiny-mt5", "model.safetensors"), Temp("model.safetensors"));

        using var ckpt = Checkpoint.Open(_dir, preferBin: true);
        Assert.Equal(["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"], ckpt.WeightFiles.Order());
        Assert.Equal(names, ckpt.TensorNames.Order());
        foreach (var n in names)
        {
            Assert.True(st.GetBytes(n).SequenceEqual(ckpt.Bytes(n)), n);
            Assert.Equal(Address(ckpt.Bytes(n)), ckpt.PointerOrNull(n));
        }
        var d = (int)st.Tensors["shared.weight"].Shape[1];
        Assert.Equal(MemoryMarshal.Cast<byte, float>(st.GetBytes("shared.weight")).ToArray(), ckpt.ReadF32("shared.weight", 1600, d));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StridedViews_AreCopiedRowMajor_SharedStoragesStayInPlace(bool protocol4)
    {
        // Storage "s" is a 2x3 float matrix 0..5; storage "i" holds longs 7, 8, 9.
        var storages = new Dictionary<string, byte[]>
        {
            ["s"] = MemoryMarshal.AsBytes<float>([0, 1, 2, 3, 4, 5]).ToArray(),
            ["i"] = MemoryMarshal.AsBytes<long>([7, 8, 9]).ToArray(),
        };
        var path = Temp("views.bin");
        TorchWriter.Write(path,
        [
            new("matrix", "s", DType.F32, [2, 3]),
            new("transposed", "s", DType.F32, [3, 2], Stride: [1, 3]),
            new("row1", "s", DType.F32, [3], Offset: 3),
            new("column2", "s", DType.F32, [2, 1], Stride: [3, 1], Offset: 2),
            new("broadcast", "s", DType.F32, [2, 2], Stride: [0, 1]),
            new("empty", "s", DType.F32, [0, 3]),
            new("longs", "i", DType.I64, [3]),
        ], storages, protocol4, archive: "some_name");

        using var f = new PyTorchFile(path);
        float[] F(string n) => MemoryMarshal.Cast<byte, float>(f.GetBytes(n)).ToArray();
        Assert.Equal([0, 1, 2, 3, 4, 5], F("matrix"));
        Assert.Equal([0, 3, 1, 4, 2, 5], F("transposed"));
        Assert.Equal([3, 4, 5], F("row1"));
        Assert.Equal([2, 5], F("column2"));
        Assert.Equal([0, 1, 0, 1], F("broadcast"));
        Assert.Empty(F("empty"));
        Assert.Equal([7L, 8, 9], MemoryMarshal.Cast<byte, long>(f.GetBytes("longs")).ToArray());
        Assert.Equal([3L, 2], f.Tensors["transposed"].Shape);
        Assert.Equal(DType.I64, f.Tensors["longs"].DType);
        Assert.True(SameAddress(f.GetBytes("matrix")[12..], f.GetBytes("row1")));
        Assert.Equal(Address(f.GetBytes("row1")), f.PointerOrNull("row1"));
        Assert.Null(f.PointerOrNull("transposed"));
    }

    [Fact]
    public void Unpickler_DecodesScalarsAndContainers()
    {
        byte[] pickle =
        [
            0x80, 2, (byte)'(',
            0x8a, 1, 0xff,                                          // LONG1 -1
            0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80,                     // LONG1 long.MinValue
            0x8a, 0,                                                // LONG1 0
            (byte)'J', 0xfb, 0xff, 0xff, 0xff,                      // BININT -5
            (byte)'M', 0xff, 0xff,                                  // BININT2 65535
            (byte)'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,                // BINFLOAT 1.5
            (byte)'N', 0x88,                                        // None, True
            (byte)'C', 2, (byte)'a', (byte)'b',                     // SHORT_BINBYTES
            (byte)']', (byte)'(', (byte)'K', 1, (byte)'K', 2, (byte)'e', // EMPTY_LIST + APPENDS
            (byte)'(', (byte)'K', 3, (byte)'l',                     // LIST
            (byte)'(', 0x8c, 1, (byte)'k', (byte)'K', 4, (byte)'d', // DICT
            (byte)'K', 7, (byte)'2', (byte)'q', 0, (byte)'0',       // DUP, BINPUT, POP
            (byte)'h', 0, (byte)'K', 1, (byte)'K', 2, 0x87,         // BINGET, TUPLE3
            0x8d, 2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0xa9,               // BINUNICODE8 "é"
            (byte)'t', (byte)'.',
        ];
        var v = Assert.IsType<object?[]>(Unpickler.Load(pickle));
        Assert.Equal([-1L, long.MinValue, 0L, -5L, 65535L, 1.5, null, true], v[..8]);
        Assert.Equal("ab"u8.ToArray(), v[8]);
        Assert.Equal([1L, 2L], Assert.IsType<List<object?>>(v[9]));
        Assert.Equal([3L], Assert.IsType<List<object?>>(v[10]));
        Assert.Equal(4L, Assert.IsType<Dictionary<object, object?>>(v[11])["k"]);
        Assert.Equal([7L, 7L, 1L, 2L, "é"], [v[12], .. Assert.IsType<object?[]>(v[13]), v[14]]);
    }

    // ---- hostile input: every case must be an XmtfException naming the file and the problem ----

    void AssertRefused(string path, string expected)
    {
        var e = Assert.Throws<XmtfException>(() => new PyTorchFile(path).Dispose());
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    /// <summary>A checkpoint whose data.pkl is <paramref name="pickle"/>, with one 6-float storage "0".</summary>
    string WithPickle(byte[] pickle)
    {
        var path = Temp("hostile.bin");
        TorchWriter.WriteZip(path, [("archive/data.pkl", pickle), ("archive/data/0", new byte[24])]);
        return path;
    }

    static readonly TensorSpec Tensor = new("w", "0", DType.F32, [2, 3]);
    static readonly Dictionary<string, byte[]> Storage = new() { ["0"] = new byte[24] };

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("__builtin__", "exec")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch", "load")]
    public void ForbiddenGlobal_IsRefused(string module, string name)
    {
        var call = new PickleWriter().Proto(2).Global(module, name).Str("touch /tmp/pwned").Op('\x85').Reduce().Stop().ToArray();
        AssertRefused(WithPickle(call), $"refused pickle global '{module}.{name}' (only tensor data is allowed)");
        var stackGlobal = new PickleWriter().Proto(4).StackGlobal(module, name).Str("x").Op('\x85').Reduce().Stop().ToArray();
        AssertRefused(WithPickle(stackGlobal), $"refused pickle global '{module}.{name}'");
    }

    [Fact]
    public void ForbiddenGlobal_InsideAStateDict_IsRefused()
    {
        var pickle = TorchWriter.StateDict([Tensor], Storage);
        var evil = System.Text.Encoding.ASCII.GetBytes("cos\nsystem\n");
        int at = pickle.AsSpan().IndexOf("ccollections\nOrderedDict\n"u8);
        AssertRefused(WithPickle([.. pickle[..at], .. evil, .. pickle[(at + 25)..]]), "refused pickle global 'os.system'");
    }

    [Fact]
    public void AllowedGlobal_CalledWithWrongArguments_IsRefused() =>
        AssertRefused(WithPickle(new PickleWriter().Proto(2).Global("collections", "OrderedDict").Str("x").Op('\x85').Reduce().Stop().ToArray()),
            "cannot call 'collections.OrderedDict'");

    [Theory]
    [InlineData(new byte[] { 0x80, 2, 0xff }, "unsupported pickle opcode 0xff")]
    [InlineData(new byte[] { 0x80, 2, (byte)'I', (byte)'1', (byte)'\n', (byte)'.' }, "unsupported pickle opcode 0x49")]
    [InlineData(new byte[] { 0x80, 2, (byte)'h', 7, (byte)'.' }, "memo index 7 was never stored")]
    [InlineData(new byte[] { 0x80, 2, (byte)'j', 0xff, 0xff, 0xff, 0xff, (byte)'.' }, "memo index 4294967295 was never stored")]
    [InlineData(new byte[] { 0x80, 2, (byte)'K', 1, 0x86, (byte)'.' }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 2, (byte)'K', 1, (byte)'(', (byte)'0', (byte)'.' }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 2, (byte)'t', (byte)'.' }, "no MARK")]
    [InlineData(new byte[] { 0x80, 2, (byte)'.' }, "STOP with 0 values")]
    [InlineData(new byte[] { 0x80, 2, (byte)'X', 0xff, 0xff, 0xff, 0xff, (byte)'a', (byte)'.' }, "declared length 4294967295 exceeds")]
    [InlineData(new byte[] { 0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80, (byte)'.' }, "declared length -")]
    [InlineData(new byte[] { 0x80, 2, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, (byte)'.' }, "integer of 9 bytes")]
    [InlineData(new byte[] { 0x80, 2, (byte)'c', (byte)'o', (byte)'s' }, "truncated pickle (GLOBAL")]
    [InlineData(new byte[] { 0x80, 2, (byte)'K', 1, (byte)'Q', (byte)'.' }, "expected a tuple")]
    [InlineData(new byte[] { 0x80, 2, (byte)']', (byte)'.' }, "does not hold a state dict")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'K', 1, (byte)'K', 2, (byte)'s', (byte)'.' }, "key that is not a string")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'X', 1, 0, 0, 0, (byte)'w', (byte)'N', (byte)'s', (byte)'.' }, "entry 'w' is not a tensor")]
    public void MalformedPickle_IsRefused(byte[] pickle, string expected) => AssertRefused(WithPickle(pickle), expected);

    [Fact]
    public void PersistentIdThatIsNotAStorage_IsRefused() =>
        AssertRefused(WithPickle(new PickleWriter().Proto(2).Mark().Str("storage").Global("collections", "OrderedDict").Str("0").Str("cpu").Int(6).Tuple().Op('Q').Stop().ToArray()),
            "persistent id is not a ('storage'");

    [Fact]
    public void TruncatedPickle_IsRefused()
    {
        var pickle = TorchWriter.StateDict([Tensor], Storage);
        AssertRefused(WithPickle(pickle[..^1]), "truncated pickle");
        AssertRefused(WithPickle(pickle[..(pickle.Length / 2)]), "truncated pickle");
    }

    [Fact]
    public void DeeplyNestedPickle_DoesNotOverflowTheStack()
    {
        const int depth = 1_000_000;
        byte[] pickle = [0x80, 2, .. Enumerable.Repeat((byte)']', depth), .. Enumerable.Repeat((byte)'a', depth - 1), (byte)'.'];
        AssertRefused(WithPickle(pickle), "does not hold a state dict");
    }

    [Theory]
    [InlineData(10)]
    [InlineData(100)]
    [InlineData(-1)]
    [InlineData(-30)]
    [InlineData(-100)]
    public void TruncatedZip_IsRefused(int keep)
    {
        var path = Temp("ok.bin");
        TorchWriter.Write(path, [Tensor], Storage);
        var bytes = File.ReadAllBytes(path);
        var cut = Temp("cut.bin");
        File.WriteAllBytes(cut, bytes[..(keep > 0 ? keep : bytes.Length + keep)]);
        var e = Assert.Throws<XmtfException>(() => new PyTorchFile(cut).Dispose());
        Assert.Contains(cut, e.Message);
        Assert.Matches("too small|truncated", e.Message);
    }

    [Fact]
    public void NotAZip_IsRefused()
    {
        var legacy = Temp("legacy.bin");
        File.WriteAllBytes(legacy, new PickleWriter().Proto(2).Int(0x1950a86a20f9469c).Stop().ToArray().Concat(new byte[100]).ToArray());
        AssertRefused(legacy, "not a zip archive");
        var empty = Temp("empty.bin");
        File.WriteAllBytes(empty, []);
        AssertRefused(empty, "too small");
    }

    [Fact]
    public void StorageOffsetBeyondTheStorage_IsRefused()
    {
        var path = Temp("offset.bin");
        TorchWriter.Write(path, [Tensor with { Offset = 1 }], Storage);
        AssertRefused(path, "tensor 'w': offset 1, shape [2, 3], stride [3, 1] reach past storage '0' (6 elements)");
        TorchWriter.Write(path, [Tensor with { Offset = long.MaxValue / 2 }], Storage);
        AssertRefused(path, "reach past storage");
        TorchWriter.Write(path, [Tensor with { Stride = [4, 1] }], Storage);
        AssertRefused(path, "reach past storage");
        TorchWriter.Write(path, [Tensor with { Shape = [1L << 20, 1L << 20], Stride = [0, 0] }], Storage);
        AssertRefused(path, "reach past storage");
        TorchWriter.Write(path, [Tensor with { Stride = [-1, 1] }], Storage);
        AssertRefused(path, "invalid shape");
        TorchWriter.Write(path, [Tensor with { Shape = [long.MaxValue, 3] }], Storage);
        AssertRefused(path, "tensor 'w': a size, stride or offset overflows 64 bits");
    }

    [Fact]
    public void StorageLargerThanItsEntry_IsRefused()
    {
        var path = Temp("numel.bin");
        TorchWriter.Write(path, [Tensor with { Numel = 1000 }], Storage);
        AssertRefused(path, "storage '0' declares 1000 F32 elements but its entry holds 24 bytes");
    }

    [Fact]
    public void MissingEntries_AreRefused()
    {
        var path = Temp("missing.bin");
        TorchWriter.WriteZip(path, [("archive/data.pkl", TorchWriter.StateDict([Tensor], Storage))]);
        AssertRefused(path, "storage entry 'archive/data/0' is missing");
        TorchWriter.WriteZip(path, [("archive/data/0", new byte[24])]);
        AssertRefused(path, "no {archive}/data.pkl entry");
    }

    [Fact]
    public void CompressedEntry_IsRefused()
    {
        var path = Temp("deflated.bin");
        TorchWriter.WriteZip(path, [("archive/data.pkl", TorchWriter.StateDict([Tensor], Storage)), ("archive/data/0", new byte[24])], CompressionLevel.Optimal);
        AssertRefused(path, "is compressed (method 8)");
    }
}
