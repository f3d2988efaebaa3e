using Xmtf.Cli;
using Xmtf.IO;
using Xmtf.Models;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;
using Xmtf.Tensors;

namespace Xmtf.Tests.Bench;

/// <summary>A fresh temporary directory, deleted with its contents.</summary>
sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "xmtf-test-" + Guid.NewGuid().ToString("N"));
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { if (Directory.Exists(Path)) Directory.Delete(Path, true); }
}

/// <summary><c>xmtf init</c>: the tiny shapes are those of the fixtures transformers saved, byte for byte where it can be.</summary>
public class InitTests
{
    static string Init(TempDir tmp, string config, string dtype = "f32", int seed = 0)
    {
        var dir = tmp.Sub(Guid.NewGuid().ToString("N"));
        Assert.Equal(0, InitCommand.Run(["--config", config, "--random", "--out", dir, "--dtype", dtype, "--seed", seed.ToString()]));
        return dir;
    }

    static Dictionary<string, TensorInfo> Tensors(string dir)
    {
        using var f = new SafeTensorsFile(System.IO.Path.Combine(dir, "model.safetensors"));
        return f.Tensors.ToDictionary();
    }

    [Theory]
    [InlineData("tiny-mt5")]
    [InlineData("tiny-bloom")]
    public void ConfigsAndTensorsAreTheFixturesOnes(string name)
    {
        using var tmp = new TempDir();
        var dir = Init(tmp, name);
        foreach (var file in new[] { "config.json", "generation_config.json" })
            Assert.Equal(File.ReadAllText(Fixtures.Path(name, file)), File.ReadAllText(System.IO.Path.Combine(dir, file)));
        var expected = Tensors(Fixtures.Path(name));
        var actual = Tensors(dir);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, e) in expected) Assert.Equal($"{k}: {e.DType} [{string.Join(", ", e.Shape)}]", $"{k}: {actual[k].DType} [{string.Join(", ", actual[k].Shape)}]");
    }

    [Fact]
    public void Bf16ModelsLoadWithTheirShapes()
    {
        using var tmp = new TempDir();
        var t5Dir = Init(tmp, "tiny-mt5", "bf16");
        Assert.All(Tensors(t5Dir).Values, t => Assert.Equal(DType.BF16, t.DType));
        using (var t5 = MT5Model.Load(t5Dir, WeightType.BF16))
        {
            Assert.Equal((64, 128, 4, 16, 2, 2, 1600), (t5.Config.DModel, t5.Config.DFf, t5.Config.NumHeads, t5.Config.DKv, t5.Config.NumLayers, t5.Config.NumDecoderLayers, t5.Config.VocabSize));
            Assert.Equal(2 * 1600, t5.Forward([5, 6, 7, 1], [0, 9]).Length);
        }
        using var bloom = BloomModel.Load(Init(tmp, "tiny-bloom", "bf16"), WeightType.BF16);
        Assert.Equal((64, 4, 2, 512), (bloom.Config.HiddenSize, bloom.Config.NumHeads, bloom.Config.NumLayers, bloom.Config.VocabSize));
        Assert.All(bloom.Forward([5, 6, 7]), x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void WeightsFollowTheSeedAndTheInitializerStd()
    {
        using var tmp = new TempDir();
        float[] Read(int seed, string name, params long[] shape)
        {
            using var ckpt = Checkpoint.Open(Init(tmp, "tiny-mt5", seed: seed));
            return ckpt.ReadF32(name, shape);
        }
        var shared = Read(1, "shared.weight", 1600, 64);
        Assert.Equal(shared, Read(1, "shared.weight", 1600, 64));
        Assert.NotEqual(shared, Read(2, "shared.weight", 1600, 64));
        // Chunks are seeded apart: the second 64k-element chunk is not a copy of the first.
        Assert.NotEqual(shared[..100], shared[65536..65636]);
        (double Mean, double Std) Stats(float[] x) => (x.Average(), Math.Sqrt(x.Average(v => (double)v * v) - x.Average() * x.Average()));
        var (mean, std) = Stats(shared);
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(std, 0.98, 1.02); // T5 initializes the embedding with std 1
        Assert.InRange(Stats(Read(1, "encoder.block.0.layer.0.SelfAttention.q.weight", 64, 64)).Std, 0.9 / 32, 1.1 / 32); // (d_model * d_kv)^-0.5
        Assert.All(Read(1, "encoder.final_layer_norm.weight", 64), x => Assert.Equal(1f, x));
    }

    [Theory]
    [InlineData("mt0-small", 300_176_768L)]   // parameter counts of the released checkpoints
    [InlineData("mt0-base", 582_401_280L)]
    [InlineData("mt0-large", 1_229_581_312L)]
    [InlineData("mt0-xl", 3_742_619_648L)]
    [InlineData("bloomz-560m", 559_214_592L)]
    [InlineData("bloomz-1b7", 1_722_408_960L)]
    public void RealShapesHaveTheReleasedParameterCounts(string name, long parameters)
    {
        var tensors = ModelShapes.Tensors(ModelShapes.Config(name));
        Assert.Equal(parameters, tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
    }
}
