using System.Text;
using System.Text.Json.Nodes;

namespace Xmtf.Tests.Cli;

/// <summary>Bad input: one clear line on stderr, a non-zero exit, no stack trace, no hang.</summary>
public class BadInputTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("xmtf-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A copy of tiny-mt5 (safetensors only) that a test then damages.</summary>
    string Copy(string fixture = "tiny-mt5")
    {
        var d = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        foreach (var f in Directory.GetFiles(Fixtures.Path(fixture)))
            if (!f.EndsWith(".bin") && !f.EndsWith("golden.json")) File.Copy(f, Path.Combine(d, Path.GetFileName(f)));
        return d;
    }

    static void AssertCleanError(string expectedFragment, params string[] args) => AssertCleanErrorWithInput("", expectedFragment, args);

    static void AssertCleanErrorWithInput(string stdin, string expectedFragment, params string[] args)
    {
        var (code, _, err) = XmtfProcess.RunWithInput(stdin, args);
        Assert.NotEqual(0, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "expected one line on stderr, got:\n" + err);
        Assert.Contains(expectedFragment, err);
        Assert.DoesNotContain("   at ", err);
    }

    /// <summary>Rewrites the JSON header of a safetensors file.</summary>
    static void EditHeader(string path, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        int len = (int)BitConverter.ToUInt64(bytes, 0);
        var header = (JsonObject)JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, len))!;
        edit(header);
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)json.Length));
        fs.Write(json);
        fs.Write(bytes, 8 + len, bytes.Length - 8 - len);
    }

    [Fact]
    public void MissingDirectoryOrConfig()
    {
        AssertCleanError("neither a local directory", "generate", "--model", Path.Combine(_dir, "nope"), "--offline", "hi");
        var d = Copy();
        File.Delete(Path.Combine(d, "config.json"));
        AssertCleanError("config.json not found", "generate", "--model", d, "hi");
    }

    [Fact]
    public void TruncatedWeights()
    {
        var d = Copy();
        var path = Path.Combine(d, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertCleanError("truncated", "generate", "--model", d, "hi");
        File.WriteAllBytes(path, bytes[..5]);
        AssertCleanError("truncated", "generate", "--model", d, "hi");
    }

    [Fact]
    public void HeaderThatLiesAboutOffsetsOrSizes()
    {
        var d = Copy();
        var path = Path.Combine(d, "model.safetensors");
        EditHeader(path, h => h["lm_head.weight"]!["data_offsets"] = new JsonArray(0, 1L << 40));
        AssertCleanError("lm_head.weight", "generate", "--model", d, "hi");
        d = Copy();
        path = Path.Combine(d, "model.safetensors");
        EditHeader(path, h => h["shared.weight"]!["shape"] = new JsonArray(1600, 65));
        AssertCleanError("shared.weight", "generate", "--model", d, "hi");
        d = Copy();
        File.WriteAllBytes(Path.Combine(d, "model.safetensors"), [.. BitConverter.GetBytes(8UL), .. "not json"u8.ToArray()]);
        AssertCleanError("not valid JSON", "generate", "--model", d, "hi");
    }

    [Fact]
    public void UnsupportedDtype()
    {
        var d = Copy();
        EditHeader(Path.Combine(d, "model.safetensors"), h => h["lm_head.weight"]!["dtype"] = "F8_E4M3");
        AssertCleanError("unsupported safetensors dtype 'F8_E4M3'", "generate", "--model", d, "hi");
        d = Copy();
        // An integer tensor where a float weight belongs.
        EditHeader(Path.Combine(d, "model.safetensors"), h =>
        {
            var w = h["encoder.final_layer_norm.weight"]!;
            w["dtype"] = "I32";
        });
        AssertCleanError("only F32, F16, BF16", "generate", "--model", d, "hi");
    }

    [Fact]
    public void ConfigThatDoesNotMatchTheWeights()
    {
        var d = Copy();
        var cfgPath = Path.Combine(d, "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!;
        cfg["d_ff"] = 256;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        AssertCleanError("config.json implies", "generate", "--model", d, "hi");
        cfg["d_ff"] = 128;
        cfg["num_layers"] = 3;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        AssertCleanError("encoder.block.2", "generate", "--model", d, "hi");
        cfg["model_type"] = "gpt2";
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        AssertCleanError("model_type 'gpt2' is not supported", "generate", "--model", d, "hi");
    }

    [Fact]
    public void BrokenTokenizer()
    {
        var d = Copy("tiny-bloom");
        File.WriteAllText(Path.Combine(d, "tokenizer.json"), "{\"model\": ");
        AssertCleanError("tokenizer", "generate", "--model", d, "hi");
        d = Copy();
        File.Delete(Path.Combine(d, "tokenizer.json"));
        File.Delete(Path.Combine(d, "spiece.model"));
        AssertCleanError("tokenizer", "tokenize", "--model", d, "hi");
    }

    [Fact]
    public void BadOptionsAndRequests()
    {
        var m = Fixtures.Path("tiny-mt5");
        AssertCleanError("unknown option '--frobnicate'", "generate", "--model", m, "--frobnicate", "hi");
        AssertCleanError("--max-new-tokens expects an integer", "generate", "--model", m, "--max-new-tokens", "many", "hi");
        AssertCleanError("num_return_sequences must be <= num_beams", "generate", "--model", m, "--num-beams", "2", "--num-return-sequences", "3", "hi");
        AssertCleanError("unknown command", "frobnicate");
        AssertCleanErrorWithInput("{\"text\": \"ok\"}\n{\"text\": \n", "stdin line 2: invalid JSON", "generate", "--model", m, "-");
        AssertCleanErrorWithInput("{\"ids\": [1, \"x\"]}\n", "must be an array of integers", "generate", "--model", m, "-");
        AssertCleanErrorWithInput("{\"ids\": [99999]}\n", "outside the vocabulary", "generate", "--model", m, "-");
        AssertCleanErrorWithInput("{\"prompt\": \"p\"}\n", "needs \"choices\"", "score", "--model", m, "-");
    }
}
