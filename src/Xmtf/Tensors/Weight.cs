using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Xmtf.Tensors;

/// <summary>How a matrix's elements are stored in memory.</summary>
public enum WeightType
{
    F32,
    /// <summary>bfloat16, widened to fp32 inside the kernels.</summary>
    BF16,
    /// <summary>
    /// int8 with one fp32 scale per group of <see cref="Weight.GroupSize"/> elements of a row. A row is blocks
    /// of <see cref="Weight.BlockGroups"/> groups, each block a cache line of its scales followed by its values,
    /// so a GEMV reads one sequential stream: separate scale arrays made a second stream per thread and cost
    /// a quarter of the speed, and all of a row's scales in front of it (a stream the values ran ahead of)
    /// halved it for rows of 4096.
    /// </summary>
    I8,
}

/// <summary>
/// A weight matrix [Rows, Cols] in row-major order (the checkpoint's <c>[out_features, in_features]</c>),
/// laid out once at load and never copied again. Memory is native (64-byte aligned) so the kernels run on
/// plain pointers and the GC never moves or scans it; a mapped file can also back it directly.
/// </summary>
public sealed unsafe class Weight : IDisposable
{
    public const int GroupSize = 32;
    /// <summary>int8: groups per block, whose 16 scales fill one cache line.</summary>
    public const int BlockGroups = 16;
    /// <summary>int8: bytes of a whole block, its scales and its values.</summary>
    public const int BlockBytes = 64 + BlockGroups * GroupSize;

    public int Rows { get; }
    public int Cols { get; }
    public WeightType Type { get; }
    /// <summary>Rows one after another, <see cref="RowBytes"/> apart: float, ushort, or (int8) blocks of scales and sbyte values.</summary>
    public void* Data { get; private set; }
    readonly bool _owned;

    Weight(int rows, int cols, WeightType type, void* data, bool owned)
    {
        if (type == WeightType.I8 && cols % GroupSize != 0) throw new ArgumentException("int8 rows must be whole groups");
        Rows = rows; Cols = cols; Type = type; Data = data; _owned = owned;
    }

    /// <summary>Bytes of one element's value (int8 scales not included).</summary>
    public int ElementBytes => Type switch { WeightType.F32 => 4, WeightType.BF16 => 2, _ => 1 };

    /// <summary>Bytes of an int8 row's scales: a cache line per block of <see cref="BlockGroups"/> groups.</summary>
    public static int ScaleBytes(int cols) => (cols / GroupSize + BlockGroups - 1) / BlockGroups * 64;

    /// <summary>Bytes from one row to the next of a matrix <paramref name="cols"/> wide kept as <paramref name="type"/>.</summary>
    public static long RowBytesOf(int cols, WeightType type) =>
        type switch { WeightType.F32 => 4L * cols, WeightType.BF16 => 2L * cols, _ => ScaleBytes(cols) + cols };

    /// <summary>Bytes from one row to the next.</summary>
    public long RowBytes => RowBytesOf(Cols, Type);

    /// <summary>Bytes of the whole matrix, int8 scales included.</summary>
    public long ByteCount => Rows * RowBytes;

    /// <summary>int8: the scale of group g of the row at <paramref name="row"/>.</summary>
    public static float* GroupScale(byte* row, int g) => (float*)(row + g / BlockGroups * BlockBytes) + g % BlockGroups;

    /// <summary>int8: the 32 values of group g of the row at <paramref name="row"/>.</summary>
    public static sbyte* GroupValues(byte* row, int g) => (sbyte*)(row + g / BlockGroups * BlockBytes + 64 + g % BlockGroups * GroupSize);

    /// <summary>The first byte of row r.</summary>
    public byte* Row(int r) => (byte*)Data + r * RowBytes;

    /// <summary>Wraps fp32 or bf16 memory owned by someone else (a mapped checkpoint) without copying.</summary>
    public static Weight InPlace(int rows, int cols, WeightType type, void* data) => new(rows, cols, type, data, false);

    /// <summary>Builds a weight of the requested type from fp32 values.</summary>
    public static Weight FromF32(ReadOnlySpan<float> src, int rows, int cols, WeightType type)
    {
        if (src.Length != (long)rows * cols) throw new ArgumentException("size mismatch");
        var w = Allocate(rows, cols, type);
        for (int r = 0; r < rows; r++) w.SetRow(r, src.Slice(r * cols, cols));
        return w;
    }

    /// <summary>An uninitialized weight in native memory; int8 needs whole groups per row, else it stays fp32.</summary>
    public static Weight Allocate(int rows, int cols, WeightType type)
    {
        if (type == WeightType.I8 && cols % GroupSize != 0) type = WeightType.F32; // tiny shapes: keep exact
        return new(rows, cols, type, NativeMemory.AlignedAlloc((nuint)(rows * RowBytesOf(cols, type)), 64), true);
    }

    /// <summary>Stores row r from fp32 values: bf16 rounds to nearest even, int8 takes a max-abs scale per group.</summary>
    public void SetRow(int r, ReadOnlySpan<float> src)
    {
        long o = (long)r * Cols;
        switch (Type)
        {
            case WeightType.F32: src.CopyTo(new Span<float>((float*)Data + o, Cols)); break;
            case WeightType.BF16:
                var b = (ushort*)Data + o;
                for (int i = 0; i < Cols; i++) b[i] = ToBF16(src[i]);
                break;
            default:
                byte* row = Row(r);
                new Span<byte>(row, (int)RowBytes).Clear(); // the scale lines' padding
                for (int g = 0; g < Cols / GroupSize; g++)
                {
                    var block = src.Slice(g * GroupSize, GroupSize);
                    float scale = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(block) is var m && m != 0 ? MathF.Abs(m) / 127f : 0f;
                    *GroupScale(row, g) = scale;
                    float inv = scale == 0 ? 0 : 1f / scale;
                    sbyte* q = GroupValues(row, g);
                    for (int i = 0; i < GroupSize; i++) q[i] = (sbyte)Math.Clamp(MathF.Round(block[i] * inv), -127, 127);
                }
                break;
        }
    }

    /// <summary>Round-to-nearest-even fp32 → bf16, as torch's cast does.</summary>
    public static ushort ToBF16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return 0x7FC0;
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    /// <summary>Row <paramref name="r"/> widened to fp32 (embedding lookups, and the GEMM's blocks of bf16/int8 rows).</summary>
    public void ReadRow(int r, Span<float> dst)
    {
        // The pointer overload trusts its caller: check here what the span indexer used to.
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of a {Rows}-row weight");
        if (dst.Length < Cols) throw new ArgumentException($"{dst.Length} floats cannot hold a row of {Cols}", nameof(dst));
        fixed (float* d = dst) ReadRow(r, d);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal void ReadRow(int r, float* dst)
    {
        int k = Cols;
        switch (Type)
        {
            case WeightType.F32: new ReadOnlySpan<float>(Row(r), k).CopyTo(new Span<float>(dst, k)); break;
            case WeightType.BF16:
                var src = (ushort*)Row(r);
                int i = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; i + 32 <= k; i += 32)
                    {
                        var (lo, hi) = Vector512.Widen(Vector512.Load(src + i));
                        Vector512.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                        Vector512.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 16);
                    }
                for (; i < k; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
                break;
            default:
                byte* row = Row(r);
                for (int g = 0; g < k / GroupSize; g++)
                {
                    float scale = *GroupScale(row, g);
                    sbyte* q = GroupValues(row, g);
                    float* d = dst + g * GroupSize;
                    if (Avx512F.IsSupported)
                    {
                        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q))) * scale).Store(d);
                        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16))) * scale).Store(d + 16);
                    }
                    else
                        for (int j = 0; j < GroupSize; j++) d[j] = q[j] * scale;
                }
                break;
        }
    }

    public void Dispose()
    {
        if (_owned && Data is not null) NativeMemory.AlignedFree(Data);
        Data = null;
    }
}
