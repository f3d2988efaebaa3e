using Xmtf.IO;
using Xmtf.Models;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf init --config NAME --random --out DIR [--dtype f32|bf16] [--seed S]</c>: a random-weight model of a
/// released checkpoint's shape (config.json, generation_config.json, model.safetensors), loadable by transformers.
/// </summary>
static class InitCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("init", argv, ["config", "out", "dtype", "seed"], ["random"]);
        if (a.Positional.Count > 0) throw new XmtfException($"'xmtf init' takes no positional arguments (got '{a.Positional[0]}')");
        var name = a.Require("config", "init");
        var dir = a.Require("out", "init");
        // Only random weights can be made here; the flag keeps the command from looking like a download.
        if (!a.Flag("random")) throw new XmtfException("'xmtf init' makes random-weight models only: pass --random");
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
            throw new XmtfException($"'{dir}' exists and is not empty");
        var dtype = StorageDType(a.Get("dtype"));
        var config = ModelShapes.Config(name);
        ModelShapes.WriteRandom(dir, config, dtype, (ulong)(a.GetInt("seed") ?? 0));
        long bytes = new FileInfo(Path.Combine(dir, "model.safetensors")).Length;
        Console.WriteLine($"wrote {dir}: random {name} ({config["model_type"]}), {dtype}, {bytes / 1e6:F1} MB of weights");
        return 0;
    }

    /// <summary>The file type of random weights: f32 or bf16 (int8 is a load-time choice, not a file type).</summary>
    public static DType StorageDType(string? s) => s switch
    {
        null or "f32" or "fp32" or "float32" => DType.F32,
        "bf16" or "bfloat16" => DType.BF16,
        _ => throw new XmtfException($"--dtype of a written model must be f32 or bf16, got '{s}'"),
    };
}
