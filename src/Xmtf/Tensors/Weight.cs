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

    public long ByteCount => (long)Rows * Cols * (Type switch { WeightType.F32 => 4, WeightType.BF16 => 2, _ => 1 })
                             + (Scales is null ? 0 : (long)Rows * Cols / GroupSize * 4);

    /// <summary>Wraps memory owned by someone else (a mapped checkpoint) without copying.</summary>
    public static Weight InPlace(int rows, int cols, WeightType type, void* data) => new(rows, cols, type, data, null, false);

    /// <summary>Builds a weight of the requested type from fp32 values.</summary>
    public static Weight FromF32(ReadOnlySpan<float> src, int rows, int cols, WeightType type)
    {
        if (src.Length != (long)rows * cols) throw new ArgumentException("size mismatch");
        if (type == WeightType.I8 && cols % GroupSize != 0) type = WeightType.F32; // tiny shapes: keep exact
        nuint n = (nuint)src.Length;
        switch (type)
        {
            case WeightType.F32:
            {
                var p = (float*)NativeMemory.AlignedAlloc(n * 4, 64);
                src.CopyTo(new Span<float>(p, src.Length));
                return new(rows, cols, type, p, null, true);
            }
            case WeightType.BF16:
            {
                var p = (ushort*)NativeMemory.AlignedAlloc(n * 2, 64);
                for (int i = 0; i < src.Length; i++) p[i] = ToBF16(src[i]);
                return new(rows, cols, type, p, null, true);
            }
            default:
            {
                var q = (sbyte*)NativeMemory.AlignedAlloc(n, 64);
                int groups = src.Length / GroupSize;
                var s = (float*)NativeMemory.AlignedAlloc((nuint)groups * 4, 64);
                for (int g = 0; g < groups; g++)
                {
                    var block = src.Slice(g * GroupSize, GroupSize);
                    float amax = 0;
                    foreach (var v in block) amax = MathF.Max(amax, MathF.Abs(v));
                    float scale = amax / 127f;
                    s[g] = scale;
                    float inv = scale == 0 ? 0 : 1f / scale;
                    for (int i = 0; i < GroupSize; i++) q[g * GroupSize + i] = (sbyte)Math.Clamp(MathF.Round(block[i] * inv), -127, 127);
                }
                return new(rows, cols, type, q, s, true);
            }
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
