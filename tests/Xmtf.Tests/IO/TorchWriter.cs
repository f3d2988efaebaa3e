using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Xmtf.IO;

namespace Xmtf.Tests.IO;

/// <summary>Emits pickle opcodes, for torch checkpoints and hostile pickles built inside the tests.</summary>
sealed class PickleWriter
{
    readonly List<byte> _bytes = new();

    public byte[] ToArray() => _bytes.ToArray();

    public PickleWriter Op(char op, params byte[] arg)
    {
        _bytes.Add((byte)op);
        _bytes.AddRange(arg);
        return this;
    }

    public PickleWriter Proto(byte version) => Op('\x80', version);
    public PickleWriter Mark() => Op('(');
    public PickleWriter Tuple() => Op('t');
    public PickleWriter Reduce() => Op('R');
    public PickleWriter Stop() => Op('.');

    /// <summary>Protocol 2 GLOBAL (<c>c module\nname\n</c>).</summary>
    public PickleWriter Global(string module, string name) => Op('c', Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    /// <summary>Protocol 4 STACK_GLOBAL of two SHORT_BINUNICODE strings, memoized as protocol 4 does.</summary>
    public PickleWriter StackGlobal(string module, string name) => ShortStr(module).ShortStr(name).Op('\x93').Op('\x94');

    public PickleWriter Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return Op('X', [.. Le32(b.Length), .. b]);
    }

    public PickleWriter ShortStr(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return Op('\x8c', [(byte)b.Length, .. b]);
    }

    /// <summary>BININT1, BININT or LONG1, the smallest that fits, as pickle does.</summary>
    public PickleWriter Int(long v) =>
        v is >= 0 and < 256 ? Op('K', (byte)v) :
        v is >= int.MinValue and <= int.MaxValue ? Op('J', Le32((int)v)) :
        Op('\x8a', [8, .. BitConverter.GetBytes(v)]);

    public PickleWriter Ints(long[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    static byte[] Le32(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return b;
    }
}

/// <summary>One tensor of a checkpoint written by <see cref="TorchWriter"/>: a view of storage <paramref name="Key"/>.</summary>
sealed record TensorSpec(string Name, string Key, DType DType, long[] Shape, long[]? Stride = null, long Offset = 0, long? Numel = null)
{
    public long[] RowMajorStride => Shape.Select((_, d) => Shape.Skip(d + 1).Aggregate(1L, (a, b) => a * b)).ToArray();
}

/// <summary>Writes torch.save-style zip checkpoints (state dict pickle + storages) in protocol 2 or 4 style.</summary>
static class TorchWriter
{
    public static string StorageType(DType t) => t switch
    {
        DType.F32 => "FloatStorage", DType.F16 => "HalfStorage", DType.BF16 => "BFloat16Storage", DType.F64 => "DoubleStorage",
        DType.I64 => "LongStorage", DType.I32 => "IntStorage", DType.I16 => "ShortStorage", DType.I8 => "CharStorage",
        DType.U8 => "ByteStorage", _ => "BoolStorage",
    };

    /// <summary>
    /// The pickle torch.save writes for a state dict: <c>{name: _rebuild_tensor_v2(persid, offset, shape, stride, False, OrderedDict())}</c>.
    /// Protocol 4 style also frames the body and makes the root an <c>OrderedDict</c> carrying <c>_metadata</c>
    /// (a BUILD), as <c>model.state_dict()</c> is pickled.
    /// </summary>
    public static byte[] StateDict(IEnumerable<TensorSpec> tensors, IReadOnlyDictionary<string, byte[]> storages, bool protocol4 = false)
    {
        var w = new PickleWriter();
        PickleWriter Glob(string m, string n) => protocol4 ? w.StackGlobal(m, n) : w.Global(m, n);
        PickleWriter Str(string s) => protocol4 ? w.ShortStr(s) : w.Str(s);
        if (protocol4) Glob("collections", "OrderedDict").Op(')').Reduce();
        else w.Op('}');
        w.Mark();
        foreach (var t in tensors)
        {
            Str(t.Name);
            Glob("torch._utils", "_rebuild_tensor_v2").Mark().Mark();
            Str("storage");
            Glob("torch", StorageType(t.DType));
            Str(t.Key);
            Str("cpu").Int(t.Numel ?? storages[t.Key].Length / t.DType.Size()).Tuple().Op('Q');
            w.Int(t.Offset).Ints(t.Shape).Ints(t.Stride ?? t.RowMajorStride).Op('\x89');
            Glob("collections", "OrderedDict").Op(')').Reduce().Tuple().Reduce();
        }
        w.Op('u');
        if (protocol4)
        {
            w.Op('}');
            Str("_metadata").Op('}');
            Str("").Op('}');
            Str("version").Int(1).Op('s').Op('s').Op('s').Op('b');
        }
        var body = w.Stop().ToArray();
        return protocol4 ? [0x80, 4, 0x95, .. BitConverter.GetBytes((long)body.Length), .. body] : [0x80, 2, .. body];
    }

    /// <summary>A checkpoint under archive folder <paramref name="archive"/>, entries stored as torch writes them.</summary>
    public static void Write(string path, IEnumerable<TensorSpec> tensors, IReadOnlyDictionary<string, byte[]> storages, bool protocol4 = false, string archive = "archive") =>
        WriteZip(path, [($"{archive}/data.pkl", StateDict(tensors, storages, protocol4)), .. storages.Select(s => ($"{archive}/data/{s.Key}", s.Value))]);

    /// <summary>Contiguous tensors, each with its own storage.</summary>
    public static void Write(string path, IEnumerable<(string Name, DType DType, long[] Shape, byte[] Data)> tensors)
    {
        var list = tensors.ToList();
        Write(path, list.Select((t, i) => new TensorSpec(t.Name, $"{i}", t.DType, t.Shape)),
            list.Select((t, i) => (Key: $"{i}", t.Data)).ToDictionary(s => s.Key, s => s.Data));
    }

    public static void WriteZip(string path, IEnumerable<(string Name, byte[] Data)> entries, CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        foreach (var (name, data) in entries)
        {
            using var s = zip.CreateEntry(name, level).Open();
            s.Write(data);
        }
    }
}
