using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmtf.Generation;

namespace Xmtf.Server;

/// <summary>
/// The HTTP server: TGI's <c>/generate</c> and <c>/generate_stream</c>, OpenAI's <c>/v1/completions</c> and
/// <c>/v1/chat/completions</c>, and <c>/health</c>, <c>/info</c>, <c>/metrics</c>, all over one
/// <see cref="Scheduler"/>. Errors are JSON (TGI's <c>{"error", "error_type"}</c>, OpenAI's
/// <c>{"error": {"message", "type", "code"}}</c> under /v1).
/// </summary>
public static class XmtfServer
{
    internal static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Builds (does not start) the app on http://host:port (port 0: a free port, see <c>app.Urls</c> once
    /// started). On shutdown (SIGTERM, Ctrl-C, StopAsync) new requests get 503 and running ones have
    /// <paramref name="grace"/> to finish before they are cancelled.
    /// </summary>
    public static WebApplication Build(Scheduler scheduler, string modelName, string host = "127.0.0.1", int port = 8080, TimeSpan? grace = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://{host}:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 4 << 20);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = grace ?? TimeSpan.FromSeconds(30));
        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(scheduler.StopAccepting);
        var metrics = scheduler.Metrics;
        app.Use(async (ctx, next) =>
        {
            await next(ctx);
            metrics.Request((ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched", ctx.Response.StatusCode);
        });

        var model = scheduler.Pipeline.Model;
        app.MapGet("/health", () => !app.Lifetime.ApplicationStopping.IsCancellationRequested
            ? Results.Json(new { status = "ok" })
            : Results.Json(new { status = "stopping" }, statusCode: 503));
        app.MapGet("/info", () => Results.Json(new
        {
            model_id = modelName,
            model_type = scheduler.Pipeline.ModelType,
            family = model.Family == ModelFamily.EncoderDecoder ? "encoder-decoder" : "decoder-only",
            dtype = scheduler.Pipeline.DType.ToString().ToLowerInvariant(),
            max_input_tokens = scheduler.Limits.MaxInputTokens,
            max_new_tokens = scheduler.Limits.MaxNewTokens,
            max_concurrent_sequences = scheduler.Limits.MaxConcurrent,
            max_queue = scheduler.Limits.MaxQueue,
            version = typeof(XmtfServer).Assembly.GetName().Version?.ToString(),
        }));
        app.MapGet("/metrics", () => Results.Text(metrics.Render(scheduler.QueueDepth, scheduler.ActiveSequences), "text/plain; version=0.0.4"));
        app.MapPost("/generate", Handle(scheduler, openAi: false, TgiApi.Generate));
        app.MapPost("/generate_stream", Handle(scheduler, openAi: false, TgiApi.GenerateStream));
        app.MapPost("/v1/completions", Handle(scheduler, openAi: true, (ctx, s) => OpenAiApi.Complete(ctx, s, modelName, chat: false)));
        app.MapPost("/v1/chat/completions", Handle(scheduler, openAi: true, (ctx, s) => OpenAiApi.Complete(ctx, s, modelName, chat: true)));
        return app;
    }

    /// <summary>Runs a handler, turning every expected failure into a JSON error (an SSE event once streaming).</summary>
    static RequestDelegate Handle(Scheduler s, bool openAi, Func<HttpContext, Scheduler, Task> handler) => async ctx =>
    {
        try { await handler(ctx, s); }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { } // the client left
        catch (Exception e) when (e is ApiException or BadHttpRequestException)
        {
            int status = e is ApiException a ? a.Status : ((BadHttpRequestException)e).StatusCode;
            object body = openAi
                ? new { error = new { message = e.Message, type = ErrorType(status), param = (string?)null, code = status } }
                : new { error = e.Message, error_type = ErrorType(status) };
            if (ctx.Response.HasStarted) await Sse.Write(ctx.Response, body);
            else await Results.Json(body, Json, statusCode: status).ExecuteAsync(ctx);
        }
    };

    static string ErrorType(int status) => status switch
    {
        400 => "invalid_request",
        413 => "input_too_long",
        422 => "validation",
        429 => "overloaded",
        503 => "unavailable",
        _ => "error",
    };
}

/// <summary>Server-sent events: <c>data: json</c> and a blank line each, flushed at once.</summary>
static class Sse
{
    public static void Start(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
    }

    public static Task Write(HttpResponse response, object data) => WriteRaw(response, JsonSerializer.Serialize(data, XmtfServer.Json));

    public static async Task WriteRaw(HttpResponse response, string data)
    {
        await response.WriteAsync($"data: {data}\n\n", response.HttpContext.RequestAborted);
        await response.Body.FlushAsync(response.HttpContext.RequestAborted);
    }
}
