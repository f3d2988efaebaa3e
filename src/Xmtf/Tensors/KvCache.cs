namespace Xmtf.Tensors;

/// <summary>
/// Where the keys (and values) of sequence r lie in their array: key j of head h starts at
/// Start(r) + h * HeadStride + j * RowStride floats.
/// </summary>
public readonly record struct KvLayout(Func<int, int> Start, int HeadStride, int RowStride)
{
    /// <summary>Rows of [heads * headDim] (an encoder's or a prompt's projections), sequence r from row firstRow(r).</summary>
    public static KvLayout RowMajor(Func<int, int> firstRow, int heads, int headDim) =>
        new(r => firstRow(r) * heads * headDim, headDim, heads * headDim);

    /// <summary>Blocks of [heads][capacity][headDim], sequence r in block(r): each head's keys are one contiguous stream.</summary>
    public static KvLayout HeadMajor(Func<int, int> block, int heads, int capacity, int headDim) =>
        new(r => block(r) * heads * capacity * headDim, capacity * headDim, headDim);
}

/// <summary>
/// Keys and values of a decoding batch, per layer [rows][heads][capacity][headDim], allocated once.
/// Head-major, so that a decode step reads each head's keys as one sequential stream: with rows of all
/// heads ([capacity][heads * headDim]) a head's keys were 4 KB apart in mt0-large, a page each, and
/// attention took 8% of the step waiting on them.
/// </summary>
public sealed class KvCache
{
    readonly int _rows, _heads, _capacity, _headDim;
    float[][] _k, _v;
    float[][]? _spareK, _spareV; // Reorder's targets, made on its first call (beam search)

    public KvCache(int layers, int rows, int heads, int capacity, int headDim)
    {
        (_rows, _heads, _capacity, _headDim) = (rows, heads, capacity, headDim);
        _k = Make(layers); _v = Make(layers);
        Layout = KvLayout.HeadMajor(r => r, heads, capacity, headDim);
    }

    float[][] Make(int layers)
    {
        var arrays = Enumerable.Range(0, layers).Select(_ => new float[_rows * _heads * _capacity * _headDim]).ToArray();
        // Touched now, as llama.cpp clears its cache at start: else each decode step faulted in pages of it
        // (in this VM 2% of a mt0-small decode step).
        foreach (var a in arrays)
            for (int i = 0; i < a.Length; i += 1024) a[i] = 0;
        return arrays;
    }

    public float[] K(int layer) => _k[layer];
    public float[] V(int layer) => _v[layer];

    /// <summary>Row r's keys start at block r.</summary>
    public KvLayout Layout { get; }

    /// <summary>
    /// Stores the keys and values of (row, position) for every head: head h's slice starts at h * sourceHeadStride
    /// of <paramref name="k"/> and <paramref name="v"/> (headDim for rows of [heads * headDim]).
    /// </summary>
    public void Write(int layer, int row, int position, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int sourceHeadStride)
    {
        if ((uint)position >= (uint)_capacity) throw new InvalidOperationException("cache capacity exceeded");
        for (int h = 0; h < _heads; h++)
        {
            int at = ((row * _heads + h) * _capacity + position) * _headDim;
            k.Slice(h * sourceHeadStride, _headDim).CopyTo(_k[layer].AsSpan(at, _headDim));
            v.Slice(h * sourceHeadStride, _headDim).CopyTo(_v[layer].AsSpan(at, _headDim));
        }
    }

    /// <summary>Row r takes the first <paramref name="length"/> positions of row sources[r] (beam search).</summary>
    public void Reorder(ReadOnlySpan<int> sources, int length)
    {
        _spareK ??= Make(_k.Length); _spareV ??= Make(_v.Length);
        int head = _capacity * _headDim, span = length * _headDim;
        for (int l = 0; l < _k.Length; l++)
            for (int r = 0; r < _rows; r++)
                for (int h = 0; h < _heads; h++)
                {
                    Array.Copy(_k[l], (sources[r] * _heads + h) * head, _spareK[l], (r * _heads + h) * head, span);
                    Array.Copy(_v[l], (sources[r] * _heads + h) * head, _spareV[l], (r * _heads + h) * head, span);
                }
        (_k, _spareK) = (_spareK, _k);
        (_v, _spareV) = (_spareV, _v);
    }
}
