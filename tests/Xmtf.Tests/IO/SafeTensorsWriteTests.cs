using Xmtf.IO;
using Xmtf.Tests.Bench;

namespace Xmtf.Tests.IO;

public class SafeTensorsWriteTests
{
    [Fact]
    public unsafe void TensorsOfWholeCacheLinesStartOnCacheLineBoundaries()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.Path);
        var path = tmp.Sub("model.safetensors");
        byte[] Bytes(int n, int seed) => Enumerable.Range(0, n).Select(i => (byte)(i * 7 + seed)).ToArray();
        // An odd-sized tensor first: it must not push the others off their boundaries.
        (string, DType, long[], byte[])[] tensors =
            [("odd", DType.F32, [25], Bytes(100, 1)), ("matrix", DType.BF16, [16, 128], Bytes(4096, 2)), ("norm", DType.F32, [32], Bytes(128, 3))];
        SafeTensorsFile.Write(path, tensors.Select(t => (t.Item1, t.Item2, t.Item3, t.Item4)));
        using var file = new SafeTensorsFile(path);
        foreach (var (name, _, shape, data) in tensors)
        {
            Assert.Equal(shape, file.Tensors[name].Shape);
            Assert.Equal(data, file.GetBytes(name).ToArray());
            if (data.Length % 64 == 0) Assert.Equal(0, (long)file.GetPointer(name) % 64);
        }
    }
}
