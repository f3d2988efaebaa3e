using System.IO.MemoryMappedFiles;

namespace Xmtf.IO;

/// <summary>A whole file mapped read-only, as one pointer; weights can be used in place from it.</summary>
sealed unsafe class MappedFile : IDisposable
{
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    public byte* Base { get; }
    public long Length { get; }

    /// <param name="tooSmall">message when the file is shorter than <paramref name="minLength"/> bytes</param>
    public MappedFile(string path, long minLength, Func<long, string> tooSmall)
    {
        long length;
        // FileInfo.Length would give a symlink's own size (Hub cache snapshots are symlinks).
        try { using var h = File.OpenHandle(path); length = RandomAccess.GetLength(h); }
        catch (Exception e) { throw new XmtfException($"{path}: cannot open: {e.Message}", e); }
        if (length < minLength) throw new XmtfException($"{path}: {tooSmall(length)}");
        Length = length;
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Base = p + _view.PointerOffset;
    }

    bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
