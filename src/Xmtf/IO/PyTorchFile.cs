using System.IO.MemoryMappedFiles;
using System.Text;

namespace Xmtf.IO;

/// <summary>
/// A memory-mapped <c>pytorch_model.bin</c> as torch.save (1.6+) writes it: a zip of <c>{archive}/data.pkl</c>, a
/// pickled state dict, and one stored entry <c>{archive}/data/{key}</c> per storage. The pickle is read by a
/// small allow-listed VM (<see cref="Unpickler"/>), so nothing in the file is ever executed. Contiguous tensors
/// are spans into the mapping (tied weights share one storage and so the same bytes); strided views are
/// copied to contiguous buffers on first use. Every offset is checked before a byte is read; bad input gives
/// an <see cref="XmtfException"/> naming the file.
/// </summary>
public sealed unsafe class PyTorchFile : ITensorFile
{
    /// <summary>Where a tensor's first element lies in the file, and its element strides there.</summary>
    sealed record Slot(TensorInfo Info, long Offset, long[] Stride, bool Contiguous);

    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _base;
    readonly Dictionary<string, Slot> _slots = new();
    readonly Dictionary<string, byte[]> _copies = new();

    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public string Path { get; }

    /// <summary>Opens and validates a torch zip checkpoint; throws <see cref="XmtfException"/> on anything malformed or unsafe.</summary>
    public PyTorchFile(string path)
    {
        Path = path;
        long length;
        try { using var h = File.OpenHandle(path); length = RandomAccess.GetLength(h); } // FileInfo.Length would give a symlink's own size (Hub cache snapshots are symlinks)
        catch (Exception e) { throw new XmtfException($"{path}: cannot open: {e.Message}", e); }
        if (length < 22) throw new XmtfException($"{path}: too small ({length} bytes) to be a torch zip checkpoint");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try
        {
            Load(new StoredZip(_base, length));
            Tensors = _slots.ToDictionary(s => s.Key, s => s.Value.Info);
        }
        catch (XmtfException e)
        {
            Dispose();
            throw new XmtfException($"{path}: {e.Message}", e);
        }
    }

    void Load(StoredZip zip)
    {
        var pickles = zip.Entries.Keys.Where(n => n.EndsWith("/data.pkl") && n.IndexOf('/') == n.Length - 9).ToList();
        if (pickles.Count != 1)
            throw new XmtfException(pickles.Count == 0 ? "no {archive}/data.pkl entry: not a torch checkpoint" : "several data.pkl entries");
        var prefix = pickles[0][..^8];
        if (zip.Entries.TryGetValue(prefix + "byteorder", out var bo) && Encoding.ASCII.GetString(zip.Bytes(bo.Offset, Math.Min(bo.Length, 16))) != "little")
            throw new XmtfException("big-endian checkpoints are not supported");
        var pkl = zip.Entries[pickles[0]];
        var root = Unpickler.Load(zip.Bytes(pkl.Offset, pkl.Length).ToArray()) as Dictionary<object, object?>
            ?? throw new XmtfException("data.pkl does not hold a state dict");
        foreach (var (key, value) in root)
        {
            var name = key as string ?? throw new XmtfException("state dict has a key that is not a string");
            var t = value as TorchTensor ?? throw new XmtfException($"state dict entry '{name}' is not a tensor");
            try { _slots[name] = Locate(zip, prefix, name, t); }
            catch (OverflowException) { throw new XmtfException($"tensor '{name}': a size, stride or offset overflows 64 bits"); }
        }
    }

    /// <summary>Checks the view against its storage entry: shape, strides and offset must stay inside it.</summary>
    static Slot Locate(StoredZip zip, string prefix, string name, TorchTensor t)
    {
        var (key, dtype, numel) = t.Storage;
        if (!zip.Entries.TryGetValue($"{prefix}data/{key}", out var entry))
            throw new XmtfException($"tensor '{name}': storage entry '{prefix}data/{key}' is missing");
        int es = dtype.Size();
        if (checked(numel * es) > entry.Length)
            throw new XmtfException($"tensor '{name}': storage '{key}' declares {numel} {dtype} elements but its entry holds {entry.Length} bytes");
        if (t.Shape.Length != t.Stride.Length || t.Shape.Any(d => d < 0) || t.Stride.Any(s => s < 0) || t.Offset < 0)
            throw new XmtfException($"tensor '{name}': invalid shape [{string.Join(", ", t.Shape)}], stride [{string.Join(", ", t.Stride)}] or offset {t.Offset}");
        var info = new TensorInfo(name, dtype, t.Shape);
        long count = t.Shape.Aggregate(1L, (a, b) => checked(a * b));
        long end = count == 0 ? t.Offset : checked(t.Offset + 1 + t.Shape.Zip(t.Stride).Sum(x => checked((x.First - 1) * x.Second)));
        // The element count bound stops a zero-stride view from blowing a tiny storage up into a huge copy.
        if (end > numel || count > numel)
            throw new XmtfException($"tensor '{name}': offset {t.Offset}, shape [{string.Join(", ", t.Shape)}], stride [{string.Join(", ", t.Stride)}] reach past storage '{key}' ({numel} elements)");
        bool contiguous = true;
        for (long d = t.Shape.Length - 1, expected = 1; d >= 0; expected *= t.Shape[d], d--)
            contiguous &= t.Shape[d] == 1 || t.Stride[d] == expected;
        return new Slot(info, entry.Offset + t.Offset * es, t.Stride, contiguous);
    }

    public ReadOnlySpan<byte> GetBytes(string name)
    {
        if (!_slots.TryGetValue(name, out var s)) throw new XmtfException($"{Path}: no tensor '{name}'");
        if (s.Info.ByteCount > int.MaxValue) throw new XmtfException($"{Path}: tensor '{name}' ({s.Info.ByteCount} bytes) is too large for one span");
        if (s.Contiguous) return new ReadOnlySpan<byte>(_base + s.Offset, (int)s.Info.ByteCount);
        lock (_copies)
        {
            if (!_copies.TryGetValue(name, out var copy)) _copies[name] = copy = Gather(s);
            return copy;
        }
    }

    /// <summary>Address of a contiguous tensor inside the mapping (for weights used in place); null for strided views, which are copies.</summary>
    internal nint? PointerOrNull(string name) => _slots.TryGetValue(name, out var s) && s.Contiguous ? (nint)(_base + s.Offset) : null;

    /// <summary>Copies a strided view into row-major order, element by element (such views are rare in checkpoints).</summary>
    byte[] Gather(Slot s)
    {
        var shape = s.Info.Shape;
        int es = s.Info.DType.Size();
        var dst = new byte[s.Info.ByteCount];
        var index = new long[shape.Length];
        for (long i = 0; i < s.Info.ElementCount; i++)
        {
            long src = 0;
            for (int d = 0; d < shape.Length; d++) src += index[d] * s.Stride[d];
            new ReadOnlySpan<byte>(_base + s.Offset + src * es, es).CopyTo(dst.AsSpan((int)(i * es)));
            for (int d = shape.Length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }
        return dst;
    }

    public void Dispose()
    {
        if (_view is null) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
