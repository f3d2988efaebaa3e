using System.Runtime.InteropServices;
using Xmtf.Generation;
using Xmtf.IO;

namespace Xmtf.Tests.Models;

/// <summary>An fp16 checkpoint (as some Hub repos ship) loads and computes like its fp16-rounded fp32 twin.</summary>
public sealed class Fp16CheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("xmtf-fp16-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Copies tiny-mt5 with every tensor stored as <paramref name="dtype"/> (values rounded through fp16).</summary>
    string Write(string name, DType dtype)
    {
        var d = Path.Combine(_dir, name);
        Directory.CreateDirectory(d);
        foreach (var f in new[] { "config.json", "generation_config.json", "spiece.model", "tokenizer_config.json" })
            File.Copy(Fixtures.Path("tiny-mt5", f), Path.Combine(d, f));
        using var src = new SafeTensorsFile(Fixtures.Path("tiny-mt5", "model.safetensors"));
        SafeTensorsFile.Write(Path.Combine(d, "model.safetensors"), src.Tensors.Values.Select(t =>
        {
            var f32 = MemoryMarshal.Cast<byte, float>(src.GetBytes(t.Name)).ToArray();
            byte[] data = dtype == DType.F16
                ? MemoryMarshal.AsBytes(f32.Select(v => (Half)v).ToArray().AsSpan()).ToArray()
                : MemoryMarshal.AsBytes(f32.Select(v => (float)(Half)v).ToArray().AsSpan()).ToArray();
            return (t.Name, dtype, t.Shape, data);
        }));
        return d;
    }

    [Fact]
    public void Fp16WeightsEqualTheirRoundedFp32Values()
    {
        using var half = Pipeline.Load(Write("f16", DType.F16));
        using var rounded = Pipeline.Load(Write("f32", DType.F32));
        var prompt = half.EncodePrompt("Translate to English: Je t’aime.");
        var o = new GenerationOptions { MaxNewTokens = 12 };
        Assert.Equal(rounded.Generate([prompt], o)[0][0].Ids, half.Generate([prompt], o)[0][0].Ids);
        var a = ((Xmtf.Models.T5.MT5Model)half.Model).Forward(prompt, [0, 5, 42]);
        var b = ((Xmtf.Models.T5.MT5Model)rounded.Model).Forward(prompt, [0, 5, 42]);
        Assert.Equal(b, a); // fp16 → fp32 widening is exact, so the computation is identical
    }
}
