using Microsoft.Extensions.AI;
using Xmtf.Server;

namespace Xmtf.Tests.Server;

public class ChatClientTests
{
    [Fact]
    public async Task ChatClientAnswersAndStreamsAsThePipeline()
    {
        using var pipeline = Pipeline.Load(Fixtures.Path("tiny-mt5"));
        using var scheduler = new Scheduler(pipeline, new ServerLimits());
        IChatClient client = new XmtfChatClient(scheduler, "tiny-mt5");
        const string prompt = "Translate to English: Je t'aime.";
        var expected = pipeline.Generate([pipeline.EncodePrompt(prompt)], pipeline.Model.Defaults.Options with { MaxNewTokens = 8 })[0][0].Text;
        var options = new ChatOptions { MaxOutputTokens = 8 };

        var response = await client.GetResponseAsync(prompt, options);
        Assert.Equal(expected, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(8, response.Usage?.OutputTokenCount);

        var updates = await client.GetStreamingResponseAsync(prompt, options).ToListAsync();
        Assert.Equal(8, updates.Count);
        Assert.Equal(expected, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        Assert.Equal("tiny-mt5", client.GetService<ChatClientMetadata>()?.DefaultModelId);
    }
}
