namespace Xmtf.Server;

/// <summary>
/// Text Generation Inference's <c>/generate</c> and <c>/generate_stream</c>:
/// <c>{"inputs": "...", "parameters": {...}}</c>. As in TGI, setting temperature, top_k or top_p turns
/// sampling on. TGI options this server does not implement are accepted only when unset.
/// </summary>
static class TgiApi
{
    sealed record Parsed(string Inputs, GenerationRequest Request, bool Details, bool FullText);

    static async Task<Parsed> Parse(HttpContext ctx, Scheduler s)
    {
        var f = await JsonFields.ReadBody(ctx.Request);
        var inputs = f.String("inputs") ?? throw new ApiException(422, "'inputs' is required");
        var p = new JsonFields(f.Object("parameters") ?? new(), "parameters");
        f.Bool("stream"); // TGI accepts it on both routes; the route decides
        f.CheckAllRead();
        var temperature = p.Number("temperature");
        var topK = p.Int("top_k");
        var topP = p.Number("top_p");
        var doSample = p.Bool("do_sample");
        if (temperature is <= 0) throw new ApiException(422, "'parameters.temperature' must be strictly positive");
        var sampling = new Sampling
        {
            MaxNewTokens = p.Int("max_new_tokens"),
            DoSample = temperature is not null && temperature != 1 || topK is > 0 || topP is < 1 ? true : doSample,
            Temperature = (float?)temperature,
            TopK = topK,
            TopP = (float?)topP,
            RepetitionPenalty = (float?)p.Number("repetition_penalty"),
            Seed = p.ULong("seed"),
            Stop = p.Strings("stop") ?? [],
        };
        bool details = p.Bool("details") ?? false, fullText = p.Bool("return_full_text") ?? false;
        p.Unsupported("best_of", 1.0);
        p.Unsupported("decoder_input_details", false);
        p.Unsupported("watermark", false);
        p.Unsupported("truncate");
        p.Unsupported("typical_p");
        p.Unsupported("top_n_tokens", 0.0);
        p.Unsupported("frequency_penalty", 0.0);
        p.Unsupported("grammar");
        p.Unsupported("adapter_id");
        p.CheckAllRead();
        var prompt = Sampling.Prompt(s, inputs);
        return new Parsed(inputs, new GenerationRequest(prompt, sampling.Options(s, prompt)), details, fullText);
    }

    static string Reason(string reason) => reason switch { "eos" => "eos_token", "stop" => "stop_sequence", _ => reason };

    static object Token(GeneratedToken t) => new { id = t.Id, text = t.Text, logprob = t.Logprob, special = t.Special };

    public static async Task Generate(HttpContext ctx, Scheduler s)
    {
        var p = await Parse(ctx, s);
        var g = s.Submit(p.Request, ctx.RequestAborted);
        var tokens = await g.Tokens.ReadAllAsync(ctx.RequestAborted).ToListAsync(ctx.RequestAborted);
        var result = (await g.Result)[0];
        await ctx.Response.WriteAsJsonAsync(new
        {
            generated_text = (p.FullText ? p.Inputs : "") + result.Text,
            details = p.Details
                ? new
                {
                    finish_reason = Reason(result.FinishReason), generated_tokens = result.Ids.Length, seed = p.Request.Options.Seed,
                    prefill = Array.Empty<object>(), tokens = tokens.Select(Token),
                }
                : null,
        }, XmtfServer.Json, ctx.RequestAborted);
    }

    /// <summary>One event per token; the last one carries the whole text and the details, as TGI's.</summary>
    public static async Task GenerateStream(HttpContext ctx, Scheduler s)
    {
        var p = await Parse(ctx, s);
        var g = s.Submit(p.Request, ctx.RequestAborted);
        Sse.Start(ctx.Response);
        int index = 0;
        await foreach (var t in g.Tokens.ReadAllAsync(ctx.RequestAborted))
        {
            var last = t.FinishReason is null ? null : (await g.Result)[0];
            await Sse.Write(ctx.Response, new
            {
                index = ++index,
                token = Token(t),
                top_tokens = (object?)null,
                generated_text = last is null ? null : (p.FullText ? p.Inputs : "") + last.Text,
                details = last is null ? null : new
                {
                    finish_reason = Reason(last.FinishReason), generated_tokens = last.Ids.Length, seed = p.Request.Options.Seed,
                    input_length = p.Request.Prompt.Length,
                },
            });
        }
    }
}
