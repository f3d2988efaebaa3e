using System.Buffers.Binary;
using System.Text;

namespace Xmtf.IO;

/// <summary>
/// The entries of a zip archive lying in memory (a mapped file), as offsets of their bytes. Only stored
/// (uncompressed) entries are accepted: torch writes them that way so storages can be used in place, and
/// refusing compression also rules out zip bombs. Zip64 is supported, since multi-GB checkpoints need it.
/// Every offset is checked against the file; errors are <see cref="XmtfException"/>s without the path.
/// </summary>
internal sealed unsafe class StoredZip
{
    readonly byte* _base;
    readonly long _length;

    /// <summary>Entry name → (offset of its first data byte, length).</summary>
    public Dictionary<string, (long Offset, long Length)> Entries { get; } = new();

    public StoredZip(byte* data, long length)
    {
        _base = data;
        _length = length;
        var (count, cdOffset, cdSize) = FindCentralDirectory();
        if (cdOffset < 0 || cdSize < 0 || cdOffset > _length - cdSize)
            throw new XmtfException("zip central directory lies outside the file (truncated?)");
        long p = cdOffset, end = cdOffset + cdSize;
        for (long i = 0; i < count; i++)
        {
            if (p > end - 46 || U32(p) != 0x02014b50) throw new XmtfException("corrupt zip central directory");
            int flags = U16(p + 8), method = U16(p + 10), nameLen = U16(p + 28), extraLen = U16(p + 30), commentLen = U16(p + 32);
            long compressed = U32(p + 20), size = U32(p + 24), local = U32(p + 42);
            if (p + 46 + nameLen + extraLen > end) throw new XmtfException("corrupt zip central directory");
            var name = Encoding.UTF8.GetString(Bytes(p + 46, nameLen));
            ReadZip64Extra(p + 46 + nameLen, extraLen, ref size, ref compressed, ref local);
            if ((flags & 1) != 0) throw new XmtfException($"zip entry '{name}' is encrypted");
            if (method != 0 || compressed != size)
                throw new XmtfException($"zip entry '{name}' is compressed (method {method}); PyTorch checkpoints store entries uncompressed");
            Entries[name] = (DataOffset(name, local, size), size);
            p += 46 + nameLen + extraLen + commentLen;
        }
    }

    /// <summary>The bytes at [offset, offset + count), after checking they lie in the file.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset > _length - count) throw new XmtfException("zip structure points outside the file (truncated?)");
        if (count > int.MaxValue) throw new XmtfException($"zip record of {count} bytes is too large");
        return new ReadOnlySpan<byte>(_base + offset, (int)count);
    }

    ushort U16(long p) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(p, 2));
    uint U32(long p) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(p, 4));
    long I64(long p) => BinaryPrimitives.ReadInt64LittleEndian(Bytes(p, 8));

    (long Count, long Offset, long Size) FindCentralDirectory()
    {
        // The end record (22 bytes + a comment of up to 64 KiB) is found by scanning back from the end.
        long eocd = -1;
        for (long p = _length - 22; p >= Math.Max(0, _length - 22 - 0xFFFF) && eocd < 0; p--)
            if (U32(p) == 0x06054b50) eocd = p;
        if (eocd < 0) throw new XmtfException("not a zip archive, or truncated (no end of central directory); legacy pre-1.6 torch.save files are not supported");
        long count = U16(eocd + 10), size = U32(eocd + 12), offset = U32(eocd + 16);
        if (count != 0xFFFF && size != 0xFFFFFFFF && offset != 0xFFFFFFFF) return (count, offset, size);
        // Zip64: a locator just before the end record points at the zip64 end record.
        if (eocd < 20 || U32(eocd - 20) != 0x07064b50) throw new XmtfException("zip64 end of central directory locator is missing");
        long z = I64(eocd - 12);
        if (U32(z) != 0x06064b50) throw new XmtfException("zip64 end of central directory record is missing");
        return (I64(z + 32), I64(z + 48), I64(z + 40));
    }

    /// <summary>Sizes and offset that overflow 32 bits are 0xFFFFFFFF in the header and follow, in this order, in extra field 1.</summary>
    void ReadZip64Extra(long p, int length, ref long size, ref long compressed, ref long local)
    {
        for (long end = p + length; p + 4 <= end; p += 4 + U16(p + 2))
        {
            if (U16(p) != 1) continue;
            long q = p + 4, fieldEnd = q + U16(p + 2);
            long Next(long v)
            {
                if (v != 0xFFFFFFFF) return v;
                if (q + 8 > fieldEnd) throw new XmtfException("corrupt zip64 extra field");
                q += 8;
                return I64(q - 8);
            }
            size = Next(size);
            compressed = Next(compressed);
            local = Next(local);
        }
    }

    long DataOffset(string name, long local, long size)
    {
        if (U32(local) != 0x04034b50) throw new XmtfException($"zip entry '{name}': local header is missing (truncated or corrupt)");
        long data = local + 30 + U16(local + 26) + U16(local + 28);
        if (size < 0 || data > _length - size) throw new XmtfException($"zip entry '{name}' ({size} bytes) extends past the end of the file (truncated?)");
        return data;
    }
}
