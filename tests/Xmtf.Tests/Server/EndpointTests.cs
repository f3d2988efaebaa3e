using System.Text.Json;

namespace Xmtf.Tests.Server;

/// <summary>One tiny-mt5 server shared by the endpoint tests of a class.</summary>
public sealed class Mt5Server : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await TestServer.Start();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public class EndpointTests(Mt5Server fixture) : IClassFixture<Mt5Server>
{
    const string Prompt = "Translate to English: Je t'aime.";
    readonly TestServer _s = fixture.Server;

    [Fact]
    public async Task HealthInfoAndMetrics()
    {
        Assert.Equal("ok", JsonDocument.Parse(await _s.Http.GetStringAsync("/health")).RootElement.GetProperty("status").GetString());
        var info = JsonDocument.Parse(await _s.Http.GetStringAsync("/info")).RootElement;
        Assert.Equal("mt5", info.GetProperty("model_type").GetString());
        Assert.Equal("encoder-decoder", info.GetProperty("family").GetString());
        Assert.Equal("f32", info.GetProperty("dtype").GetString());
        Assert.Equal(64, info.GetProperty("max_input_tokens").GetInt32());
        await _s.Post("/generate", new { inputs = Prompt, parameters = new { max_new_tokens = 3 } });
        var metrics = await _s.Http.GetStringAsync("/metrics");
        Assert.Contains("xmtf_http_requests_total{route=\"/generate\",status=\"200\"}", metrics);
        Assert.Contains("# TYPE xmtf_request_duration_seconds histogram", metrics);
        Assert.Contains("xmtf_request_duration_seconds_bucket{le=\"+Inf\"}", metrics);
        Assert.Contains("xmtf_time_to_first_token_seconds_count", metrics);
        Assert.Contains("xmtf_queue_depth 0", metrics);
        Assert.Contains("xmtf_tokens_per_second", metrics);
        Assert.Matches(@"xmtf_generated_tokens_total [1-9]", metrics);
    }

    [Fact]
    public async Task GenerateIsPipelineGreedy()
    {
        var (status, body) = await _s.Post("/generate", new { inputs = Prompt, parameters = new { max_new_tokens = 12, details = true } });
        Assert.Equal(200, status);
        Assert.Equal(_s.Expected(Prompt, 12), body.GetProperty("generated_text").GetString());
        var details = body.GetProperty("details");
        Assert.Equal("length", details.GetProperty("finish_reason").GetString());
        Assert.Equal(12, details.GetProperty("generated_tokens").GetInt32());
        var tokens = details.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal(12, tokens.Count);
        Assert.All(tokens, t => Assert.True(t.GetProperty("logprob").GetSingle() < 0));
        Assert.Equal(body.GetProperty("generated_text").GetString(), string.Concat(tokens.Select(t => t.GetProperty("text").GetString())));
    }

    [Fact]
    public async Task GenerateStreamSendsOneEventPerToken()
    {
        var events = (await _s.Events("/generate_stream", new { inputs = Prompt, parameters = new { max_new_tokens = 10 } }))
            .Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(10, events.Count);
        Assert.Equal(Enumerable.Range(1, 10), events.Select(e => e.GetProperty("index").GetInt32()));
        Assert.All(events[..^1], e => Assert.Equal(JsonValueKind.Null, e.GetProperty("generated_text").ValueKind));
        var expected = _s.Expected(Prompt, 10);
        Assert.Equal(expected, string.Concat(events.Select(e => e.GetProperty("token").GetProperty("text").GetString())));
        Assert.Equal(expected, events[^1].GetProperty("generated_text").GetString());
        Assert.Equal("length", events[^1].GetProperty("details").GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task StopSequenceEndsTheText()
    {
        var full = _s.Expected(Prompt, 12);
        var stop = full.Substring(full.Length / 2, 2);
        var (_, body) = await _s.Post("/generate", new { inputs = Prompt, parameters = new { max_new_tokens = 12, stop = new[] { stop }, details = true } });
        Assert.Equal(_s.Expected(Prompt, 12, stop), body.GetProperty("generated_text").GetString());
        // As Pipeline.Generate: the text ends with the token that completed the stop sequence.
        Assert.Contains(stop, body.GetProperty("generated_text").GetString());
        Assert.True(body.GetProperty("generated_text").GetString()!.Length < full.Length);
        Assert.Equal("stop_sequence", body.GetProperty("details").GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task CompletionsIsPipelineGreedy()
    {
        var (status, body) = await _s.Post("/v1/completions", new { model = "m", prompt = new[] { Prompt, "Hello" }, max_tokens = 8, temperature = 0, logprobs = 2 });
        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        var choices = body.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([_s.Expected(Prompt, 8), _s.Expected("Hello", 8)], choices.Select(c => c.GetProperty("text").GetString()));
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal("length", choices[0].GetProperty("finish_reason").GetString());
        var lp = choices[0].GetProperty("logprobs");
        Assert.Equal(8, lp.GetProperty("token_logprobs").GetArrayLength());
        Assert.Equal(2, lp.GetProperty("top_logprobs")[0].EnumerateObject().Count());
        var usage = body.GetProperty("usage");
        Assert.Equal(16, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(_s.Pipeline.EncodePrompt(Prompt).Length + _s.Pipeline.EncodePrompt("Hello").Length, usage.GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task CompletionsSamplesNChoicesReproduciblyWithASeed()
    {
        object Request() => new { prompt = Prompt, max_tokens = 6, temperature = 0.8, n = 3, seed = 7 };
        var (_, a) = await _s.Post("/v1/completions", Request());
        var (_, b) = await _s.Post("/v1/completions", Request());
        var texts = a.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()).ToList();
        Assert.Equal(3, texts.Count);
        Assert.Equal(texts, b.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()));
    }

    [Fact]
    public async Task CompletionsStreamEndsWithDone()
    {
        var events = await _s.Events("/v1/completions", new { prompt = Prompt, max_tokens = 7, stream = true });
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0]).ToList();
        Assert.Equal(7, chunks.Count);
        Assert.Equal(_s.Expected(Prompt, 7), string.Concat(chunks.Select(c => c.GetProperty("text").GetString())));
        Assert.Equal("length", chunks[^1].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task ChatOfOneMessageIsTheCompletionOfItsText()
    {
        var (status, body) = await _s.Post("/v1/chat/completions", new { model = "m", messages = new[] { new { role = "user", content = Prompt } }, max_tokens = 9, logprobs = true, top_logprobs = 1 });
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal(_s.Expected(Prompt, 9), choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(9, choice.GetProperty("logprobs").GetProperty("content").GetArrayLength());
    }

    [Fact]
    public async Task ChatStreamsDeltas()
    {
        var messages = new object[]
        {
            new { role = "system", content = "Be brief." },
            new { role = "user", content = new[] { new { type = "text", text = Prompt } } },
        };
        var events = await _s.Events("/v1/chat/completions", new { messages, max_tokens = 5, stream = true });
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var text = string.Concat(chunks.Skip(1).Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()));
        Assert.Equal(_s.Expected($"System: Be brief.\nUser: {Prompt}\nAssistant:", 5), text);
    }

    [Fact]
    public async Task ConcurrentRequestsAreBatchedAndGiveTheirAloneOutput()
    {
        var prompts = Enumerable.Range(0, 8).Select(i => string.Join(' ', Enumerable.Repeat("word", i + 1)) + " " + Prompt).ToArray();
        var answers = await Task.WhenAll(prompts.Select(p => _s.Post("/generate", new { inputs = p, parameters = new { max_new_tokens = 16 } })));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(_s.Expected(prompts[i], 16), answers[i].Body.GetProperty("generated_text").GetString());
    }
}

public class BloomEndpointTests
{
    [Fact]
    public async Task BloomGreedyMatchesThePipelineAloneAndBatched()
    {
        await using var s = await TestServer.Start("tiny-bloom");
        var prompts = new[] { "Hello", "A longer prompt for the model", "Translate to English: Je t'aime." };
        var (_, alone) = await s.Post("/generate", new { inputs = prompts[1], parameters = new { max_new_tokens = 10 } });
        Assert.Equal(s.Expected(prompts[1], 10), alone.GetProperty("generated_text").GetString());
        var answers = await Task.WhenAll(prompts.Select(p => s.Post("/v1/completions", new { prompt = p, max_tokens = 10 })));
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(s.Expected(prompts[i], 10), answers[i].Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }
}
