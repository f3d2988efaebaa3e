using System.Text.Json;

namespace Xmtf.IO;

/// <summary>
/// A memory-mapped <c>.safetensors</c> file: an 8-byte header length, a JSON header of
/// <c>{name: {dtype, shape, data_offsets}}</c>, then the data. Every offset is checked against the file
/// before a byte is read, so a lying header gives an error, not a crash.
/// </summary>
public sealed unsafe class SafeTensorsFile : ITensorFile
{
    readonly MappedFile _file;
    readonly byte* _base;
    readonly long _dataStart;
    readonly Dictionary<string, (TensorInfo Info, long Begin, long End)> _entries = new();

    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public string Path { get; }

    public SafeTensorsFile(string path)
    {
        Path = path;
        _file = new MappedFile(path, 8, n => $"truncated safetensors file ({n} bytes)");
        _base = _file.Base;
        long length = _file.Length;
        try
        {
            ulong headerLen = *(ulong*)_base;
            if (headerLen > (ulong)(length - 8) || headerLen > 100_000_000)
                throw new XmtfException($"{path}: safetensors header length {headerLen} exceeds the file ({length} bytes)");
            _dataStart = 8 + (long)headerLen;
            var dataLen = length - _dataStart;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(new ReadOnlySpan<byte>(_base + 8, (int)headerLen).ToArray())); }
            catch (JsonException e) { throw new XmtfException($"{path}: safetensors header is not valid JSON: {e.Message}", e); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new XmtfException($"{path}: safetensors header is not a JSON object");
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    if (prop.Name == "__metadata__")
                    {
                        var md = (Dictionary<string, string>)Metadata;
                        if (prop.Value.ValueKind == JsonValueKind.Object)
                            foreach (var m in prop.Value.EnumerateObject()) md[m.Name] = m.Value.ToString();
                        continue;
                    }
                    _entries[prop.Name] = ParseEntry(prop.Name, prop.Value, dataLen);
                }
            }
            Tensors = _entries.ToDictionary(e => e.Key, e => e.Value.Info);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    (TensorInfo, long, long) ParseEntry(string name, JsonElement e, long dataLen)
    {
        try
        {
            var dtype = ParseDType(e.GetProperty("dtype").GetString() ?? "");
            var shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var offs = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offs.Length != 2) throw new XmtfException($"{Path}: tensor '{name}': data_offsets must have 2 entries");
            var info = new TensorInfo(name, dtype, shape);
            if (shape.Any(d => d < 0)) throw new XmtfException($"{Path}: tensor '{name}': negative dimension");
            if (offs[0] < 0 || offs[1] < offs[0] || offs[1] > dataLen)
                throw new XmtfException($"{Path}: tensor '{name}': data_offsets [{offs[0]}, {offs[1]}] lie outside the data ({dataLen} bytes); the file is truncated or corrupt");
            if (offs[1] - offs[0] != info.ByteCount)
                throw new XmtfException($"{Path}: tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {info.ByteCount} bytes but data_offsets give {offs[1] - offs[0]}");
            return (info, offs[0], offs[1]);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new XmtfException($"{Path}: tensor '{name}': malformed header entry ({ex.Message})", ex);
        }
    }

    static DType ParseDType(string s) => s switch
    {
        "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16, "F64" => DType.F64,
        "I64" => DType.I64, "I32" => DType.I32, "I16" => DType.I16, "I8" => DType.I8, "U8" => DType.U8,
        "BOOL" => DType.Bool,
        _ => throw new XmtfException($"unsupported safetensors dtype '{s}'"),
    };

    public ReadOnlySpan<byte> GetBytes(string name)
    {
        if (!_entries.TryGetValue(name, out var e)) throw new XmtfException($"{Path}: no tensor '{name}'");
        return new ReadOnlySpan<byte>(_base + _dataStart + e.Begin, checked((int)(e.End - e.Begin)));
    }

    /// <summary>Pointer to a tensor's bytes inside the mapping (for weights used in place).</summary>
    internal byte* GetPointer(string name) => _base + _dataStart + _entries[name].Begin;

    /// <summary>
    /// Copies bytes of a tensor with a plain read instead of through the mapping, so that converting a
    /// weight (f32 file → int8) does not leave the whole source file resident in this process.
    /// </summary>
    internal void Read(string name, long offset, Span<byte> dst)
    {
        var e = _entries[name];
        if (offset < 0 || offset + dst.Length > e.End - e.Begin) throw new ArgumentOutOfRangeException(nameof(offset));
        _handle ??= File.OpenHandle(Path);
        int n = RandomAccess.Read(_handle, dst, _dataStart + e.Begin + offset);
        if (n != dst.Length) throw new XmtfException($"{Path}: tensor '{name}' is cut short");
    }

    Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;

    public void Dispose()
    {
        _file?.Dispose();
        _handle?.Dispose();
    }

    /// <summary>Writes tensors as a safetensors file (used by the tests).</summary>
    public static void Write(string path, IEnumerable<(string Name, DType DType, long[] Shape, byte[] Data)> tensors)
    {
        var list = tensors.ToList();
        Write(path, list.Select(t => new TensorInfo(t.Name, t.DType, t.Shape)).ToList(), (i, s) => s.Write(list[i].Data));
    }

    /// <summary>
    /// Writes a safetensors file whose data <paramref name="writeData"/>(i, stream) appends tensor i by tensor i,
    /// so a multi-gigabyte model (<c>xmtf init</c>) never has to be in memory whole. The header is padded with
    /// spaces (as the format allows) so the data starts 64 bytes into a cache line boundary of the file, and
    /// tensors whose sizes are whole cache lines go first: a memory-mapped bf16 matrix is then read in place in
    /// aligned lines. A matrix whose rows start mid-line costs the GEMV an extra block per row (rows of 1 KB: 8%).
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorInfo> tensors, Action<int, Stream> writeData)
    {
        var order = Enumerable.Range(0, tensors.Count).OrderBy(i => tensors[i].ByteCount % 64 == 0 ? 0 : 1).ToArray(); // stable
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long off = 0;
        foreach (int i in order)
        {
            var t = tensors[i];
            header[t.Name] = new { dtype = t.DType switch { DType.F32 => "F32", DType.F16 => "F16", DType.BF16 => "BF16", DType.I8 => "I8", DType.I64 => "I64", DType.I32 => "I32", _ => throw new ArgumentException(t.DType.ToString()) }, shape = t.Shape, data_offsets = new[] { off, off + t.ByteCount } };
            off += t.ByteCount;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (64 - (8 + json.Length) % 64) % 64;
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        fs.Write(BitConverter.GetBytes((ulong)(json.Length + pad)));
        fs.Write(json);
        for (int i = 0; i < pad; i++) fs.WriteByte((byte)' ');
        foreach (int i in order)
        {
            long start = fs.Position;
            writeData(i, fs);
            if (fs.Position - start != tensors[i].ByteCount)
                throw new InvalidOperationException($"tensor '{tensors[i].Name}': wrote {fs.Position - start} bytes, its header says {tensors[i].ByteCount}");
        }
    }
}
