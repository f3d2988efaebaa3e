using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xmtf.IO;

/// <summary>
/// A model directory as the Hub ships it: <c>config.json</c>, optional <c>generation_config.json</c>, and
/// weights in one of <c>model.safetensors</c>, sharded safetensors with <c>model.safetensors.index.json</c>,
/// <c>pytorch_model.bin</c>, or sharded <c>.bin</c> with <c>pytorch_model.bin.index.json</c>
/// (safetensors preferred, as transformers does).
/// </summary>
public sealed unsafe class Checkpoint : IDisposable
{
    readonly List<ITensorFile> _files = new();
    readonly Dictionary<string, ITensorFile> _byName = new();

    public string Directory { get; }
    public JsonObject Config { get; }
    public JsonObject? GenerationConfig { get; }
    public IEnumerable<string> TensorNames => _byName.Keys;
    /// <summary>The weight files actually opened, relative to <see cref="Directory"/>.</summary>
    public IReadOnlyList<string> WeightFiles { get; }

    Checkpoint(string dir, bool preferBin, bool weights = true)
    {
        Directory = dir;
        Config = ReadJson(System.IO.Path.Combine(dir, "config.json"), required: true)!;
        GenerationConfig = ReadJson(System.IO.Path.Combine(dir, "generation_config.json"), required: false);
        var files = weights ? FindWeightFiles(dir, preferBin) : [];
        WeightFiles = files;
        try
        {
            foreach (var f in files)
            {
                var tf = OpenFile(System.IO.Path.Combine(dir, f));
                _files.Add(tf);
                foreach (var name in tf.Tensors.Keys) _byName.TryAdd(name, tf);
            }
        }
        catch { Dispose(); throw; }
    }

    /// <summary>config.json's model_type.</summary>
    public string ModelType => Config["model_type"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var t) ? t
        : throw new XmtfException($"{Directory}/config.json has no model_type");

    /// <summary>Only config.json and generation_config.json, no weights (to decide how to load).</summary>
    public static Checkpoint OpenConfig(string dir)
    {
        if (!System.IO.Directory.Exists(dir)) throw new XmtfException($"model directory '{dir}' does not exist");
        return new Checkpoint(dir, preferBin: false, weights: false);
    }

    /// <summary>Opens a model directory. <paramref name="preferBin"/> picks <c>.bin</c> weights when both exist.</summary>
    public static Checkpoint Open(string dir, bool preferBin = false)
    {
        if (!System.IO.Directory.Exists(dir)) throw new XmtfException($"model directory '{dir}' does not exist");
        return new Checkpoint(dir, preferBin);
    }

    public static ITensorFile OpenFile(string path) =>
        path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? new SafeTensorsFile(path) : new PyTorchFile(path);

    static JsonObject? ReadJson(string path, bool required)
    {
        if (!File.Exists(path))
        {
            if (required) throw new XmtfException($"{path} not found: not a model directory");
            return null;
        }
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new XmtfException($"{path}: expected a JSON object");
        }
        catch (JsonException e) { throw new XmtfException($"{path}: invalid JSON: {e.Message}", e); }
    }

    static List<string> FindWeightFiles(string dir, bool preferBin)
    {
        string[][] candidates =
        [
            ["model.safetensors.index.json", "model.safetensors"],
            ["pytorch_model.bin.index.json", "pytorch_model.bin"],
        ];
        if (preferBin) Array.Reverse(candidates);
        foreach (var (index, single) in candidates.Select(c => (c[0], c[1])))
        {
            var indexPath = System.IO.Path.Combine(dir, index);
            if (File.Exists(indexPath))
            {
                var map = ReadJson(indexPath, true)!["weight_map"] as JsonObject
                    ?? throw new XmtfException($"{indexPath}: no weight_map");
                var shards = map.Select(kv => kv.Value?.GetValue<string>() ?? "").Distinct().ToList();
                foreach (var s in shards)
                    if (s.Contains("..") || System.IO.Path.IsPathRooted(s) || !File.Exists(System.IO.Path.Combine(dir, s)))
                        throw new XmtfException($"{indexPath}: shard '{s}' is missing");
                return shards;
            }
            if (File.Exists(System.IO.Path.Combine(dir, single))) return [single];
        }
        throw new XmtfException($"{dir}: no weights found (model.safetensors, pytorch_model.bin or a sharded index)");
    }

    public bool Has(string name) => _byName.ContainsKey(name);

    public TensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var f) ? f.Tensors[name] : throw new XmtfException($"{Directory}: weight '{name}' is missing");

    public ReadOnlySpan<byte> Bytes(string name) => _byName[name].GetBytes(name);

    /// <summary>Address of a tensor inside a memory-mapped file, or null when it is not mapped.</summary>
    internal unsafe nint? PointerOrNull(string name) => _byName.GetValueOrDefault(name) switch
    {
        SafeTensorsFile st => (nint)st.GetPointer(name),
        PyTorchFile pt => pt.PointerOrNull(name),
        _ => null,
    };

    /// <summary>The weight as fp32 after checking its shape; bf16 and fp16 are widened exactly.</summary>
    public float[] ReadF32(string name, params long[] shape)
    {
        var info = Checked(name, shape);
        var dst = new float[info.ElementCount];
        ToF32(info.DType, Bytes(name), dst, name);
        return dst;
    }

    /// <summary>Info of a weight whose shape must be the one config.json implies.</summary>
    TensorInfo Checked(string name, params long[] shape)
    {
        var info = Info(name);
        if (!info.Shape.SequenceEqual(shape))
            throw new XmtfException($"{Directory}: weight '{name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", shape)}]");
        return info;
    }

    /// <summary>
    /// A weight matrix in memory as <paramref name="type"/>: used in place from the mapped file when it is
    /// stored in that type already, else converted (<see cref="ReadWeight"/>).
    /// </summary>
    public Tensors.Weight LoadWeight(string name, int rows, int cols, Tensors.WeightType type)
    {
        var info = Checked(name, rows, cols);
        bool same = (type, info.DType) is (Tensors.WeightType.F32, DType.F32) or (Tensors.WeightType.BF16, DType.BF16);
        return same && PointerOrNull(name) is { } p ? Tensors.Weight.InPlace(rows, cols, type, (void*)p) : ReadWeight(name, rows, cols, type);
    }

    /// <summary>
    /// The weight converted to <paramref name="type"/> one row at a time, so a large matrix never exists
    /// twice in memory (peak RSS stays near the weights in use).
    /// </summary>
    public Tensors.Weight ReadWeight(string name, int rows, int cols, Tensors.WeightType type)
    {
        var info = Checked(name, rows, cols);
        var w = Tensors.Weight.Allocate(rows, cols, type);
        var row = new float[cols];
        int rowBytes = cols * info.DType.Size();
        var file = _byName[name] as SafeTensorsFile;
        // Offsets are long all the way: one tensor may pass 2 GiB (mt0-xl's fp32 embedding, bloomz-7b1's).
        byte* mapped = file is null && PointerOrNull(name) is { } p ? (byte*)p : null;
        var buffer = new byte[rowBytes];
        try
        {
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<byte> src;
                if (file is not null) { file.Read(name, (long)r * rowBytes, buffer); src = buffer; }
                else if (mapped is not null) src = new ReadOnlySpan<byte>(mapped + (long)r * rowBytes, rowBytes);
                else src = Bytes(name).Slice(r * rowBytes, rowBytes);
                ToF32(info.DType, src, row, name);
                w.SetRow(r, row);
            }
        }
        catch { w.Dispose(); throw; }
        return w;
    }

    internal static void ToF32(DType dtype, ReadOnlySpan<byte> src, Span<float> dst, string name)
    {
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DType.BF16:
                var bf = MemoryMarshal.Cast<byte, ushort>(src);
                var di = MemoryMarshal.Cast<float, uint>(dst);
                for (int i = 0; i < bf.Length; i++) di[i] = (uint)bf[i] << 16;
                break;
            case DType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < h.Length; i++) dst[i] = (float)h[i];
                break;
            case DType.F64:
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]);
                break;
            default:
                throw new XmtfException($"weight '{name}' has dtype {dtype}; only F32, F16, BF16 and F64 weights are supported");
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
