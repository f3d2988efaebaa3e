using System.Buffers;

namespace Xmtf.Tensors;

/// <summary>
/// Large activation buffers (logits rows of a 250k vocabulary) rented from the shared pool, so that
/// request after request (scoring, serving) reuses memory instead of faulting in fresh pages.
/// </summary>
static class Pooled
{
    public static void Grow(ref float[] a, int n)
    {
        if (a.Length >= n) return;
        Return(ref a);
        a = ArrayPool<float>.Shared.Rent(n);
    }

    public static void Return(ref float[] a)
    {
        if (a.Length > 0) ArrayPool<float>.Shared.Return(a);
        a = [];
    }
}
