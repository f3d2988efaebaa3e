using System.Net.Http.Json;
using System.Text.Json;
using Xmtf.Server;

namespace Xmtf.Tests.Server;

public class LifecycleTests
{
    [Fact]
    public async Task ClientDisconnectCancelsItsGeneration()
    {
        // Long enough (attention grows with the length) that it cannot finish while a loaded machine notices the disconnect.
        await using var s = await TestServer.Start(limits: new ServerLimits { MaxInputTokens = 64, MaxNewTokens = 30000, MaxConcurrent = 8, MaxQueue = 16 });
        var request = new HttpRequestMessage(HttpMethod.Post, "/generate_stream")
        {
            Content = JsonContent.Create(new { inputs = "hello", parameters = new { max_new_tokens = 30000 } }),
        };
        using (var response = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
            Assert.Equal(1, s.Scheduler.ActiveSequences);
        } // disposing the response closes the connection mid-stream
        await TestServer.Eventually(() => s.Scheduler.ActiveSequences == 0);
        await TestServer.Eventually(() => s.Scheduler.Metrics.Render(0, 0).Contains("xmtf_generations_total{outcome=\"cancelled\"} 1"));
    }

    [Fact]
    public async Task StoppingFinishesRunningRequestsAndRefusesNewOnes()
    {
        var s = await TestServer.Start(grace: TimeSpan.FromSeconds(30));
        // Long enough that the polling below (every 10 ms) sees it running: 300 tokens took a few tens of ms.
        var running = s.Post("/generate", new { inputs = "hello", parameters = new { max_new_tokens = 3000 } });
        await TestServer.Eventually(() => s.Scheduler.ActiveSequences == 1);
        // What SIGTERM does: the host stops, waiting for running requests up to the grace period.
        var stopping = s.App.StopAsync();
        var (status, body) = await running;
        Assert.Equal(200, status);
        Assert.Equal(s.Expected("hello", 3000), body.GetProperty("generated_text").GetString());
        await stopping;
        await Assert.ThrowsAsync<HttpRequestException>(() => s.Http.GetStringAsync("/health"));
        await s.DisposeAsync();
    }
}
