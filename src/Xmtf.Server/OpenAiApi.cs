using System.Text.Json.Nodes;

namespace Xmtf.Server;

/// <summary>
/// OpenAI's <c>/v1/completions</c> and <c>/v1/chat/completions</c>. <c>model</c> is echoed, not used to pick
/// a model. Unset temperature means the checkpoint's default (greedy for mT0 and BLOOMZ); 0 is greedy, above 0
/// samples. <c>prompt</c> may be a list: choice <c>i * n + j</c> is sample j of prompt i. Log-probs are the
/// model's own (before temperature and top-p). Chat messages become one prompt as <see cref="ChatPrompt"/> says.
/// </summary>
static class OpenAiApi
{
    sealed record Parsed(IReadOnlyList<string> Prompts, List<GenerationRequest> Requests, bool Stream, bool Echo, int? Logprobs);

    static async Task<Parsed> Parse(HttpContext ctx, Scheduler s, bool chat)
    {
        var f = await JsonFields.ReadBody(ctx.Request);
        f.String("model");
        f.String("user");
        var prompts = chat ? [ChatPrompt.Format(Messages(f))] : f.Strings("prompt") ?? throw new ApiException(422, "'prompt' is required");
        if (prompts.Count == 0) throw new ApiException(422, "'prompt' must not be empty");
        int? maxTokens = f.Int("max_tokens");
        if (chat) maxTokens = f.Int("max_completion_tokens") ?? maxTokens;
        var temperature = f.Number("temperature");
        if (temperature is < 0 or > 2) throw new ApiException(422, "'temperature' must be between 0 and 2");
        var sampling = new Sampling
        {
            MaxNewTokens = maxTokens,
            DoSample = temperature is null ? null : temperature > 0,
            Temperature = temperature is > 0 ? (float)temperature : null,
            TopP = (float?)f.Number("top_p"),
            TopK = f.Int("top_k"),
            RepetitionPenalty = (float?)f.Number("repetition_penalty"),
            Seed = f.ULong("seed"),
            Stop = f.Strings("stop") ?? [],
        };
        int n = f.Int("n") ?? 1;
        bool stream = f.Bool("stream") ?? false;
        bool echo = !chat && (f.Bool("echo") ?? false);
        int? logprobs = chat ? (f.Bool("logprobs") == true ? f.Int("top_logprobs") ?? 0 : null) : f.Int("logprobs");
        if (logprobs is < 0 or > 20) throw new ApiException(422, "top log-probs must be between 0 and 20");
        if (chat && f.Int("top_logprobs") is not null && logprobs is null) throw new ApiException(422, "'top_logprobs' needs 'logprobs': true");
        if (!chat) { f.Unsupported("best_of", (double)n); f.Unsupported("suffix"); }
        f.Unsupported("presence_penalty", 0.0);
        f.Unsupported("frequency_penalty", 0.0);
        f.Unsupported("logit_bias");
        f.Unsupported("stream_options");
        if (chat) { f.Unsupported("response_format"); f.Unsupported("tools"); f.Unsupported("tool_choice", "none"); }
        f.CheckAllRead();
        var requests = prompts.Select(text =>
        {
            var ids = Sampling.Prompt(s, text);
            return new GenerationRequest(ids, sampling.Options(s, ids), n, logprobs ?? 0);
        }).ToList();
        if (requests.Count * n > s.Limits.MaxConcurrent)
            throw new ApiException(422, $"{requests.Count * n} choices asked for; this server decodes at most {s.Limits.MaxConcurrent} sequences at once");
        return new Parsed(prompts, requests, stream, echo, logprobs);
    }

    /// <summary>messages: [{role, content}] where content is a string or a list of {"type": "text", "text"} parts.</summary>
    static List<(string, string)> Messages(JsonFields f)
    {
        var array = f.Array("messages") ?? throw new ApiException(422, "'messages' is required");
        return array.Select((node, i) =>
        {
            var m = new JsonFields(node as JsonObject ?? throw new ApiException(400, $"'messages[{i}]' must be an object"), $"messages[{i}]");
            var role = m.String("role") ?? throw new ApiException(422, $"'messages[{i}].role' is required");
            m.String("name");
            var content = m.Raw("content") switch
            {
                null => "",
                JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
                JsonArray parts => string.Concat(parts.Select((part, j) => TextPart(part, $"messages[{i}].content[{j}]"))),
                _ => throw new ApiException(400, $"'messages[{i}].content' must be a string or an array of parts"),
            };
            m.CheckAllRead();
            return (role, content);
        }).ToList();
    }

    /// <summary>A content part: only {"type": "text", "text": ...}, as the model reads text only.</summary>
    static string TextPart(JsonNode? node, string where)
    {
        var p = new JsonFields(node as JsonObject ?? throw new ApiException(400, $"'{where}' must be an object"), where);
        if (p.String("type") != "text") throw new ApiException(422, $"'{where}.type' must be \"text\" (this model reads text only)");
        var text = p.String("text") ?? "";
        p.CheckAllRead();
        return text;
    }

    static string Reason(string reason) => reason == "length" ? "length" : "stop";

    public static async Task Complete(HttpContext ctx, Scheduler s, string model, bool chat)
    {
        var p = await Parse(ctx, s, chat);
        var gens = p.Requests.Select(r => s.Submit(r, ctx.RequestAborted)).ToList();
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string kind = chat ? "chat.completion" : "text_completion";
        int n = p.Requests[0].N;
        var pipeline = s.Pipeline;

        if (!p.Stream)
        {
            var choices = new List<object>();
            int completionTokens = 0;
            for (int i = 0; i < gens.Count; i++)
            {
                var tokens = await gens[i].Tokens.ReadAllAsync(ctx.RequestAborted).ToListAsync(ctx.RequestAborted);
                var results = await gens[i].Result;
                for (int j = 0; j < results.Length; j++)
                {
                    var r = results[j];
                    completionTokens += r.Ids.Length;
                    var seq = tokens.Where(t => t.Sequence == j).ToList();
                    var text = (p.Echo ? p.Prompts[i] : "") + r.Text;
                    choices.Add(chat
                        ? new { index = i * n + j, message = new { role = "assistant", content = text }, logprobs = Logprobs(pipeline, seq, p.Logprobs, chat), finish_reason = Reason(r.FinishReason) }
                        : new { index = i * n + j, text, logprobs = Logprobs(pipeline, seq, p.Logprobs, chat), finish_reason = Reason(r.FinishReason) });
                }
            }
            int promptTokens = p.Requests.Sum(r => r.Prompt.Length);
            await ctx.Response.WriteAsJsonAsync(new
            {
                id, @object = kind, created, model, choices,
                usage = new { prompt_tokens = promptTokens, completion_tokens = completionTokens, total_tokens = promptTokens + completionTokens },
            }, XmtfServer.Json, ctx.RequestAborted);
            return;
        }

        Sse.Start(ctx.Response);
        object Chunk(object choice) => new { id, @object = chat ? "chat.completion.chunk" : "text_completion", created, model, choices = new[] { choice } };
        for (int i = 0; i < gens.Count; i++)
        {
            if (chat)
                for (int j = 0; j < n; j++)
                    await Sse.Write(ctx.Response, Chunk(new { index = i * n + j, delta = new { role = "assistant", content = "" }, logprobs = (object?)null, finish_reason = (string?)null }));
            else if (p.Echo)
                for (int j = 0; j < n; j++)
                    await Sse.Write(ctx.Response, Chunk(new { index = i * n + j, text = p.Prompts[i], logprobs = (object?)null, finish_reason = (string?)null }));
            await foreach (var t in gens[i].Tokens.ReadAllAsync(ctx.RequestAborted))
            {
                var logprobs = Logprobs(pipeline, [t], p.Logprobs, chat);
                var reason = t.FinishReason is null ? null : Reason(t.FinishReason);
                await Sse.Write(ctx.Response, Chunk(chat
                    ? new { index = i * n + t.Sequence, delta = new { content = t.Text }, logprobs, finish_reason = reason }
                    : new { index = i * n + t.Sequence, text = t.Text, logprobs, finish_reason = reason }));
            }
        }
        await Sse.WriteRaw(ctx.Response, "[DONE]");
    }

    /// <summary>The logprobs object of a choice (or of one streamed token): the legacy shape for completions, "content" for chat.</summary>
    static object? Logprobs(Pipeline pipeline, List<GeneratedToken> tokens, int? top, bool chat)
    {
        if (top is null) return null;
        string Piece(int id) => pipeline.Decode([id]);
        static int[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s).Select(b => (int)b).ToArray();
        if (chat)
            return new
            {
                content = tokens.Select(t => new
                {
                    token = Piece(t.Id), logprob = t.Logprob, bytes = Bytes(Piece(t.Id)),
                    top_logprobs = t.Top.Select(a => new { token = Piece(a.Id), logprob = a.Logprob, bytes = Bytes(Piece(a.Id)) }),
                }),
            };
        int offset = 0;
        return new
        {
            tokens = tokens.Select(t => Piece(t.Id)),
            token_logprobs = tokens.Select(t => t.Logprob),
            top_logprobs = tokens.Select(t => t.Top.GroupBy(a => Piece(a.Id)).ToDictionary(g => g.Key, g => g.First().Logprob)),
            text_offset = tokens.Select(t => { int o = offset; offset += t.Text.Length; return o; }).ToList(),
        };
    }
}
