using Xmtf.Cli;

namespace Xmtf.Tests.Server;

public class RunCommandTests
{
    [Fact]
    public void ReplReadsPromptsAndSettingsFromPlainLines()
    {
        var model = Fixtures.Path("tiny-mt5");
        using var pipeline = Pipeline.Load(model);
        string Expected(string prompt, int n) => pipeline.Generate([pipeline.EncodePrompt(prompt)], pipeline.Model.Defaults.Options with { MaxNewTokens = n })[0][0].Text;
        var input = new StringReader("Hello world\n/set max-new-tokens 3\n/set max-new-tokens x\n/set model other\n/set do-sample yes\n/frobnicate\n\nHello world\n/bye\nnever read\n");
        var output = new StringWriter();

        Assert.Equal(0, RunCommand.Repl(["--model", model, "--max-new-tokens", "6"], input, output, interactive: false));

        var lines = output.ToString().Split('\n');
        Assert.Equal(Expected("Hello world", 6), lines[0]);
        Assert.Equal("error: --max-new-tokens expects an integer, got 'x'", lines[1]);
        Assert.Contains("fixed for the session", lines[2]);
        Assert.Contains("takes no positional arguments (got 'yes')", lines[3]);
        Assert.Contains("unknown command '/frobnicate'", lines[4]);
        Assert.Equal(Expected("Hello world", 3), lines[5]);
        Assert.Equal("", lines[6]);
        Assert.Equal(7, lines.Length);
    }
}
