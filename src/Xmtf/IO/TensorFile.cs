namespace Xmtf.IO;

/// <summary>Element types found in checkpoints.</summary>
public enum DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool }

public static class DTypes
{
    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };
}

/// <summary>Name, element type and shape of one stored tensor.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteCount => ElementCount * DType.Size();
}

/// <summary>
/// A file of named tensors (safetensors, or a PyTorch zip checkpoint). Bytes are little-endian,
/// contiguous, row-major. The span stays valid until the file is disposed.
/// </summary>
public interface ITensorFile : IDisposable
{
    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    ReadOnlySpan<byte> GetBytes(string name);
}
