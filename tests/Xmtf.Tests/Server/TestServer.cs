using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Xmtf.Generation;
using Xmtf.Server;

namespace Xmtf.Tests.Server;

/// <summary>A real server on 127.0.0.1 (a free port) over a fixture model, with a client for it.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public Pipeline Pipeline { get; }
    public Scheduler Scheduler { get; }
    public WebApplication App { get; }
    public HttpClient Http { get; }

    TestServer(Pipeline pipeline, Scheduler scheduler, WebApplication app)
    {
        Pipeline = pipeline; Scheduler = scheduler; App = app;
        Http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
    }

    public static async Task<TestServer> Start(string fixture = "tiny-mt5", ServerLimits? limits = null, TimeSpan? grace = null)
    {
        var pipeline = Pipeline.Load(Fixtures.Path(fixture));
        var scheduler = new Scheduler(pipeline, limits ?? new ServerLimits { MaxInputTokens = 64, MaxNewTokens = 10000, MaxConcurrent = 8, MaxQueue = 16 });
        var app = XmtfServer.Build(scheduler, fixture, port: 0, grace: grace);
        await app.StartAsync();
        return new TestServer(pipeline, scheduler, app);
    }

    /// <summary>POSTs a JSON text; the status and the parsed body.</summary>
    public async Task<(int Status, JsonElement Body)> Post(string path, string json)
    {
        using var r = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public Task<(int Status, JsonElement Body)> Post(string path, object body) => Post(path, JsonSerializer.Serialize(body));

    /// <summary>The data lines of an SSE response, checking the framing: "data: ..." lines each followed by a blank line.</summary>
    public async Task<List<string>> Events(string path, object body)
    {
        using var r = await Http.PostAsync(path, JsonContent.Create(body));
        Assert.Equal(200, (int)r.StatusCode);
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType?.MediaType);
        var text = await r.Content.ReadAsStringAsync();
        Assert.EndsWith("\n\n", text);
        var events = text[..^2].Split("\n\n");
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.All(events, e => Assert.DoesNotContain('\n', e));
        return events.Select(e => e["data: ".Length..]).ToList();
    }

    /// <summary>Greedy text of <see cref="Pipeline.Generate"/> for the same prompt: what the server must answer.</summary>
    public GenerationOptions Greedy(int maxNewTokens) => Pipeline.Model.Defaults.Options with { MaxNewTokens = maxNewTokens, TopK = 0 };

    public string Expected(string prompt, int maxNewTokens, params string[] stop) =>
        Pipeline.Generate([Pipeline.EncodePrompt(prompt)], Greedy(maxNewTokens) with { StopStrings = stop })[0][0].Text;

    /// <summary>Waits (up to 10 s) for a condition the scheduler reaches asynchronously.</summary>
    public static async Task Eventually(Func<bool> condition)
    {
        for (int i = 0; i < 1000 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition());
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Scheduler.Dispose();
        Pipeline.Dispose();
    }
}
