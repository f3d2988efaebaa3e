using System.Runtime.InteropServices;

namespace Xmtf.Tensors;

/// <summary>How a matrix's elements are stored in memory.</summary>
public enum WeightType
{
    F32,
    /// <summary>bfloat16, widened to fp32 inside the kernels.</summary>
    BF16,
    /// <summary>int8 with one fp32 scale per group of <see cref="Weight.GroupSize"/> elements of a row.</summary>
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

    public int Rows { get; }
    public int Cols { get; }
    public WeightType Type { get; }
    /// <summary>Row-major elements (float*, ushort* or sbyte* by <see cref="Type"/>).</summary>
    public void* Data { get; private set; }
    /// <summary>int8 only: Rows * Cols / GroupSize scales.</summary>
    public float* Scales { get; private set; }
    readonly bool _owned;

    Weight(int rows, int cols, WeightType type, void* data, float* scales, bool owned)
    {
        Rows = rows; Cols = cols; Type = type; Data = data; Scales = scales; _owned = owned;
    }

    /// <summary>Bytes of one element of <see cref="Data"/> (int8 scales not included).</summary>
    public int ElementBytes => Type switch { WeightType.F32 => 4, WeightType.BF16 => 2, _ => 1 };

    public long ByteCount => (long)Rows * Cols * ElementBytes
                             + (Scales is null ? 0 : (long)Rows * Cols / GroupSize * 4);

    /// <summary>Wraps memory owned by someone else (a mapped checkpoint) without copying.</summary>
    public static Weight InPlace(int rows, int cols, WeightType type, void* data) => new(rows, cols, type, data, null, false);

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
        nuint n = (nuint)rows * (nuint)cols;
        return type switch
        {
            WeightType.F32 => new(rows, cols, type, NativeMemory.AlignedAlloc(n * 4, 64), null, true),
            WeightType.BF16 => new(rows, cols, type, NativeMemory.AlignedAlloc(n * 2, 64), null, true),
            _ => new(rows, cols, type, NativeMemory.AlignedAlloc(n, 64), (float*)NativeMemory.AlignedAlloc(n / GroupSize * 4, 64), true),
        };
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
                var q = (sbyte*)Data + o;
                for (int g = 0; g < Cols / GroupSize; g++)
                {
                    var block = src.Slice(g * GroupSize, GroupSize);
                    float scale = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(block) is var m && m != 0 ? MathF.Abs(m) / 127f : 0f;
                    Scales[o / GroupSize + g] = scale;
                    float inv = scale == 0 ? 0 : 1f / scale;
                    for (int i = 0; i < GroupSize; i++) q[g * GroupSize + i] = (sbyte)Math.Clamp(MathF.Round(block[i] * inv), -127, 127);
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

    /// <summary>Row <paramref name="r"/> widened to fp32 (embedding lookups).</summary>
    public void ReadRow(int r, Span<float> dst)
    {
        long o = (long)r * Cols;
        switch (Type)
        {
            case WeightType.F32: new ReadOnlySpan<float>((float*)Data + o, Cols).CopyTo(dst); break;
            case WeightType.BF16:
                var b = (ushort*)Data + o;
                for (int i = 0; i < Cols; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)b[i] << 16);
                break;
            default:
                var q = (sbyte*)Data + o;
                for (int i = 0; i < Cols; i++) dst[i] = q[i] * Scales[(o + i) / GroupSize];
                break;
        }
    }

    public void Dispose()
    {
        if (_owned && Data is not null)
        {
            NativeMemory.AlignedFree(Data);
            if (Scales is not null) NativeMemory.AlignedFree(Scales);
        }
        Data = null; Scales = null;
    }
}
