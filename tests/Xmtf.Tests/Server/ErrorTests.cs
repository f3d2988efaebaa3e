using System.Text.Json;
using Xmtf.Server;

namespace Xmtf.Tests.Server;

public class ErrorTests(Mt5Server fixture) : IClassFixture<Mt5Server>
{
    readonly TestServer _s = fixture.Server;

    /// <summary>Checks the status and that the error body is JSON of the route's family, mentioning <paramref name="words"/>.</summary>
    async Task Fails(int status, string path, string json, string words)
    {
        var (actual, body) = await _s.Post(path, json);
        Assert.Equal(status, actual);
        var message = path.StartsWith("/v1")
            ? body.GetProperty("error").GetProperty("message").GetString()
            : body.GetProperty("error").GetString();
        Assert.Contains(words, message);
    }

    [Theory]
    [InlineData("/generate", "{\"inputs\": ", "malformed JSON")]
    [InlineData("/generate", "[1, 2]", "must be a JSON object")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"inputs\": \"b\"}", "malformed JSON")]
    [InlineData("/generate", "{\"inputs\": 5}", "'inputs' must be a string")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"max_new_tokens\": 2.5}}", "'parameters.max_new_tokens' must be an integer")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"maxnewtokens\": 2}}", "unknown field 'parameters.maxnewtokens'")]
    [InlineData("/generate_stream", "{\"inputs\": \"a\", \"extra\": true}", "unknown field 'extra'")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": \"5\"}", "'max_tokens' must be an integer")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"stop\": [1]}", "'stop' must be a string or an array of strings")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"temprature\": 0}", "unknown field 'temprature'")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"mood\": 1}]}", "unknown field 'messages[0].mood'")]
    [InlineData("/v1/chat/completions", "{\"messages\": \"hi\"}", "'messages' must be an array")]
    public Task BadRequestsAre400(string path, string json, string words) => Fails(400, path, json, words);

    [Fact]
    public async Task TooLongPromptsAre413()
    {
        var prompt = string.Join(' ', Enumerable.Repeat("word", 100));
        await Fails(413, "/generate", JsonSerializer.Serialize(new { inputs = prompt }), "at most 64");
        await Fails(413, "/v1/completions", JsonSerializer.Serialize(new { prompt }), "max-input-tokens");
    }

    [Theory]
    [InlineData("/generate", "{\"parameters\": {}}", "'inputs' is required")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"max_new_tokens\": 20000}}", "at most 10000")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"temperature\": 0}}", "strictly positive")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"best_of\": 2}}", "'parameters.best_of' is not supported")]
    [InlineData("/generate", "{\"inputs\": \"a\", \"parameters\": {\"top_p\": 1.5}}", "top_p")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"n\": 9}", "at most 8")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"temperature\": 3}", "between 0 and 2")]
    [InlineData("/v1/completions", "{\"prompt\": \"a\", \"frequency_penalty\": 1}", "not supported")]
    [InlineData("/v1/chat/completions", "{\"messages\": []}", "must not be empty")]
    [InlineData("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "text only")]
    public Task InvalidValuesAre422(string path, string json, string words) => Fails(422, path, json, words);

    [Fact]
    public async Task UnsetTgiOptionsAreAccepted()
    {
        // What huggingface_hub's InferenceClient sends for a plain text_generation call.
        var (status, _) = await _s.Post("/generate", """
            {"inputs": "a", "parameters": {"best_of": null, "decoder_input_details": false, "details": true, "do_sample": false,
             "frequency_penalty": null, "grammar": null, "max_new_tokens": 3, "repetition_penalty": null, "return_full_text": false,
             "seed": null, "stop": [], "temperature": null, "top_k": null, "top_n_tokens": null, "top_p": null, "truncate": null,
             "typical_p": null, "watermark": false}, "stream": false}
            """);
        Assert.Equal(200, status);
    }
}

public class QueueTests
{
    [Fact]
    public async Task AFullQueueIs429()
    {
        // 100k tokens (~20 s here): the running request must still run when it is cancelled below, however slowly
        // this test's own steps go on a loaded machine (5000 tokens once ran out first, in the full suite).
        await using var s = await TestServer.Start(limits: new ServerLimits { MaxNewTokens = 100_000, MaxConcurrent = 1, MaxQueue = 1 });
        using var cancel = new CancellationTokenSource();
        var options = s.Greedy(100_000);
        var prompt = s.Pipeline.EncodePrompt("hello");
        // One request decoding, one waiting for its slot: the queue is full.
        var running = s.Scheduler.Submit(new GenerationRequest(prompt, options), cancel.Token);
        await TestServer.Eventually(() => s.Scheduler.ActiveSequences == 1);
        var waiting = s.Scheduler.Submit(new GenerationRequest(prompt, options), cancel.Token);
        var (status, body) = await s.Post("/v1/completions", new { prompt = "hello", max_tokens = 3 });
        Assert.Equal(429, status);
        Assert.Contains("max-queue 1", body.GetProperty("error").GetProperty("message").GetString());
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.Result);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.Result);
        await TestServer.Eventually(() => s.Scheduler.ActiveSequences == 0);
    }
}
