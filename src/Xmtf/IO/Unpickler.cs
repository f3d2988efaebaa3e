using System.Buffers.Binary;
using System.Text;

namespace Xmtf.IO;

/// <summary>A storage named by a persistent id: entry <c>data/{Key}</c> of the archive, <see cref="Numel"/> elements.</summary>
internal sealed record TorchStorage(string Key, DType DType, long Numel);

/// <summary>A tensor view as <c>torch._utils._rebuild_tensor_v2</c> describes it (offset and strides in elements).</summary>
internal sealed record TorchTensor(TorchStorage Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// A pickle virtual machine for the subset torch.save writes (protocols 2-5, binary opcodes). Nothing from
/// the file is ever imported or run: GLOBAL resolves only the allow-listed names below to markers, and
/// REDUCE/NEWOBJ apply them as plain data constructors. Any other global is refused at GLOBAL time. The
/// machine is a loop over the bytes (no recursion) and every length is checked against the remaining
/// input, so hostile input fails with an <see cref="XmtfException"/> (without the path; the caller adds it).
/// Values: null, bool, long, double, string, byte[], <c>object?[]</c> (tuple), <c>List&lt;object?&gt;</c>,
/// <c>Dictionary&lt;object, object?&gt;</c>, <see cref="TorchStorage"/>, <see cref="TorchTensor"/>.
/// </summary>
internal sealed class Unpickler
{
    sealed record Global(string Name);

    static readonly Dictionary<string, DType> StorageTypes = new()
    {
        ["torch.FloatStorage"] = DType.F32, ["torch.HalfStorage"] = DType.F16, ["torch.BFloat16Storage"] = DType.BF16,
        ["torch.DoubleStorage"] = DType.F64, ["torch.LongStorage"] = DType.I64, ["torch.IntStorage"] = DType.I32,
        ["torch.ShortStorage"] = DType.I16, ["torch.CharStorage"] = DType.I8, ["torch.ByteStorage"] = DType.U8,
        ["torch.BoolStorage"] = DType.Bool,
    };

    static readonly HashSet<string> Callables =
        ["torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter", "collections.OrderedDict"];

    static readonly UTF8Encoding StrictUtf8 = new(false, true);

    readonly byte[] _data;
    readonly List<object?> _stack = new();
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();
    int _pos;

    Unpickler(byte[] data) => _data = data;

    /// <summary>Runs the pickle in <paramref name="data"/> to its STOP and returns the value it built.</summary>
    public static object? Load(byte[] data) => new Unpickler(data).Run();

    object? Run()
    {
        while (true)
        {
            int at = _pos;
            byte op = Take(1)[0];
            switch (op)
            {
                case 0x80: Take(1); break;                                     // PROTO: any version; opcodes are checked one by one
                case 0x95: Take(8); break;                                     // FRAME: a buffering hint only
                case (byte)'.': return _stack.Count == 1 ? _stack[0] : throw Error(at, $"STOP with {_stack.Count} values on the stack");
                case (byte)'(': _marks.Push(_stack.Count); break;              // MARK
                case (byte)'0': Pop(at); break;                                // POP
                case (byte)'1': PopMark(at); break;                            // POP_MARK
                case (byte)'2': Push(Peek(at)); break;                         // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;                                  // NEWTRUE
                case 0x89: Push(false); break;                                 // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;   // BININT
                case (byte)'K': Push((long)Take(1)[0]); break;                                         // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;  // BININT2
                case 0x8a: Push(Long(at, Take(1)[0])); break;                                          // LONG1
                case 0x8b: Push(Long(at, Length(at, 4))); break;                                       // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;            // BINFLOAT
                case 0x8c: Push(Utf8(at, Take(1)[0])); break;                                          // SHORT_BINUNICODE
                case (byte)'X': Push(Utf8(at, Length(at, 4))); break;                                  // BINUNICODE
                case 0x8d: Push(Utf8(at, Length(at, 8))); break;                                       // BINUNICODE8
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;              // SHORT_BINSTRING
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(Length(at, 4)))); break;           // BINSTRING
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break;                               // SHORT_BINBYTES
                case (byte)'B': Push(Take(Length(at, 4)).ToArray()); break;                            // BINBYTES
                case 0x8e: Push(Take(Length(at, 8)).ToArray()); break;                                 // BINBYTES8
                case (byte)')': Push(Array.Empty<object?>()); break;                                   // EMPTY_TUPLE
                case 0x85: Push(Pops(at, 1)); break;                                                   // TUPLE1
                case 0x86: Push(Pops(at, 2)); break;                                                   // TUPLE2
                case 0x87: Push(Pops(at, 3)); break;                                                   // TUPLE3
                case (byte)'t': Push(PopMark(at)); break;                                              // TUPLE
                case (byte)']': Push(new List<object?>()); break;                                      // EMPTY_LIST
                case (byte)'l': Push(new List<object?>(PopMark(at))); break;                           // LIST
                case (byte)'a': { var v = Pop(at); Top<List<object?>>(at).Add(v); break; }             // APPEND
                case (byte)'e': { var vs = PopMark(at); Top<List<object?>>(at).AddRange(vs); break; }  // APPENDS
                case (byte)'}': Push(new Dictionary<object, object?>()); break;                        // EMPTY_DICT
                case (byte)'d': { var d = new Dictionary<object, object?>(); SetItems(at, d, PopMark(at)); Push(d); break; } // DICT
                case (byte)'s': SetItems(at, Top<Dictionary<object, object?>>(at, 3), Pops(at, 2)); break;                   // SETITEM
                case (byte)'u': { var kv = PopMark(at); SetItems(at, Top<Dictionary<object, object?>>(at), kv); break; }     // SETITEMS
                case (byte)'q': Put(at, Take(1)[0]); break;                                            // BINPUT
                case (byte)'r': Put(at, BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break;      // LONG_BINPUT
                case 0x94: Put(at, _memo.Count); break;                                                // MEMOIZE
                case (byte)'h': Push(Get(at, Take(1)[0])); break;                                      // BINGET
                case (byte)'j': Push(Get(at, BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;// LONG_BINGET
                case (byte)'c': Push(Resolve(at, $"{Line(at)}.{Line(at)}")); break;                    // GLOBAL
                case 0x93: { var name = Pop<string>(at); Push(Resolve(at, $"{Pop<string>(at)}.{name}")); break; } // STACK_GLOBAL
                case (byte)'Q': Push(Storage(at, Pop<object?[]>(at))); break;                          // BINPERSID
                case (byte)'R':                                                                        // REDUCE
                case 0x81: { var args = Pop<object?[]>(at); Push(Call(at, Pop<Global>(at), args)); break; } // NEWOBJ
                case (byte)'b': Pop(at); Peek(at); break;                                              // BUILD: object state (e.g. OrderedDict._metadata) is not needed
                default: throw Error(at, $"unsupported pickle opcode 0x{op:x2}");
            }
        }
    }

    static XmtfException Error(int at, string problem) => new($"data.pkl at byte {at}: {problem}");

    ReadOnlySpan<byte> Take(long count)
    {
        if (count > _data.Length - _pos) throw Error(_pos, "truncated pickle (ran past the end of data.pkl before STOP)");
        _pos += (int)count;
        return _data.AsSpan(_pos - (int)count, (int)count);
    }

    /// <summary>A declared length; anything beyond the remaining input is refused before allocating.</summary>
    long Length(int at, int width)
    {
        long n = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Take(4)) : BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        if (n < 0 || n > _data.Length - _pos) throw Error(at, $"declared length {n} exceeds the remaining {_data.Length - _pos} bytes");
        return n;
    }

    string Utf8(int at, long length)
    {
        try { return StrictUtf8.GetString(Take(length)); }
        catch (DecoderFallbackException) { throw Error(at, "invalid UTF-8 in a string"); }
    }

    /// <summary>Little-endian two's complement of <paramref name="n"/> bytes; tensor metadata always fits in 64 bits.</summary>
    long Long(int at, long n)
    {
        if (n > 8) throw Error(at, $"integer of {n} bytes is too large");
        var b = Take(n);
        long v = n > 0 && (b[^1] & 0x80) != 0 ? -1 : 0;
        for (int i = b.Length - 1; i >= 0; i--) v = (v << 8) | b[i];
        return v;
    }

    string Line(int at)
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error(at, "truncated pickle (GLOBAL name runs past the end of data.pkl)");
        return Encoding.UTF8.GetString(Take(end - _pos + 1)[..^1]);
    }

    void Push(object? v) => _stack.Add(v);

    /// <summary>Values below the innermost MARK belong to an enclosing frame and cannot be popped, as in CPython.</summary>
    int Floor => _marks.Count > 0 ? _marks.Peek() : 0;

    object? Peek(int at) => _stack.Count > Floor ? _stack[^1] : throw Error(at, "stack underflow");

    object? Pop(int at)
    {
        var v = Peek(at);
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    T Pop<T>(int at) => Pop(at) is T t ? t : throw Error(at, $"expected {Describe(typeof(T))} on the stack");

    /// <summary>The value <paramref name="depth"/> places from the top, which must be a <typeparamref name="T"/>.</summary>
    T Top<T>(int at, int depth = 1) =>
        _stack.Count - depth >= Floor && _stack[^depth] is T t ? t : throw Error(at, $"expected {Describe(typeof(T))} on the stack");

    object?[] Pops(int at, int n)
    {
        if (_stack.Count - n < Floor) throw Error(at, "stack underflow");
        var items = _stack.GetRange(_stack.Count - n, n).ToArray();
        _stack.RemoveRange(_stack.Count - n, n);
        return items;
    }

    object?[] PopMark(int at)
    {
        if (_marks.Count == 0) throw Error(at, "no MARK on the stack");
        var items = Pops(at, _stack.Count - _marks.Peek());
        _marks.Pop();
        return items;
    }

    void SetItems(int at, Dictionary<object, object?> d, object?[] kv)
    {
        if (kv.Length % 2 != 0) throw Error(at, "odd number of items for a dict");
        for (int i = 0; i < kv.Length; i += 2) d[kv[i] ?? throw Error(at, "None as a dict key")] = kv[i + 1];
    }

    void Put(int at, long index) => _memo[index] = Peek(at);

    object? Get(int at, long index) => _memo.TryGetValue(index, out var v) ? v : throw Error(at, $"memo index {index} was never stored");

    static object Resolve(int at, string name) =>
        StorageTypes.ContainsKey(name) || Callables.Contains(name)
            ? new Global(name)
            : throw Error(at, $"refused pickle global '{name}' (only tensor data is allowed)");

    /// <summary>torch's persistent id: <c>('storage', storage_type, key, location, numel)</c>.</summary>
    static TorchStorage Storage(int at, object?[] pid) =>
        pid is ["storage", Global type, string key, _, long numel] && StorageTypes.TryGetValue(type.Name, out var dtype) && numel >= 0
            ? new TorchStorage(key, dtype, numel)
            : throw Error(at, "persistent id is not a ('storage', <torch.*Storage>, key, location, numel) tuple");

    static object? Call(int at, Global f, object?[] args) => (f.Name, args) switch
    {
        ("collections.OrderedDict", []) => new Dictionary<object, object?>(),
        // v2 adds requires_grad, backward_hooks and optional metadata, none of which matter for weights.
        ("torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor", [TorchStorage s, long offset, object?[] shape, object?[] stride, ..])
            => new TorchTensor(s, offset, Longs(at, shape), Longs(at, stride)),
        ("torch._utils._rebuild_parameter", [TorchTensor t, ..]) => t,
        _ => throw Error(at, $"cannot call '{f.Name}' with these {args.Length} arguments"),
    };

    static long[] Longs(int at, object?[] items) =>
        items.Select(x => x as long? ?? throw Error(at, "tensor size or stride is not an integer")).ToArray();

    static string Describe(Type t) =>
        t == typeof(object?[]) ? "a tuple" : t == typeof(string) ? "a string" : t == typeof(Global) ? "an allowed global" :
        t == typeof(List<object?>) ? "a list" : t == typeof(Dictionary<object, object?>) ? "a dict" : t.Name;
}
