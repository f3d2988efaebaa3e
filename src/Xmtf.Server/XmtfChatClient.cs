using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Xmtf.Server;

/// <summary>
/// <see cref="IChatClient"/> over a <see cref="Scheduler"/>, in process: concurrent callers are batched
/// together like HTTP requests. Messages become one prompt as <see cref="ChatPrompt"/> says. Honoured options:
/// MaxOutputTokens, Temperature (0: greedy, above 0: sampling, unset: the checkpoint's default), TopP, TopK,
/// Seed, StopSequences; others are ignored. Limits and invalid options throw <see cref="ApiException"/>.
/// </summary>
public sealed class XmtfChatClient(Scheduler scheduler, string modelId) : IChatClient
{
    readonly ChatClientMetadata _metadata = new("xmtf", null, modelId);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = Request(messages, options);
        var result = (await scheduler.Submit(request, cancellationToken).Result)[0];
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ModelId = modelId,
            FinishReason = Reason(result.FinishReason),
            Usage = new UsageDetails
            {
                InputTokenCount = request.Prompt.Length, OutputTokenCount = result.Ids.Length,
                TotalTokenCount = request.Prompt.Length + result.Ids.Length,
            },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var generation = scheduler.Submit(Request(messages, options), cancellationToken);
        var id = Guid.NewGuid().ToString("N");
        await foreach (var t in generation.Tokens.ReadAllAsync(cancellationToken))
            yield return new ChatResponseUpdate(ChatRole.Assistant, t.Text)
            {
                ResponseId = id, ModelId = modelId, FinishReason = t.FinishReason is null ? null : Reason(t.FinishReason),
            };
    }

    GenerationRequest Request(IEnumerable<ChatMessage> messages, ChatOptions? o)
    {
        var prompt = Sampling.Prompt(scheduler, ChatPrompt.Format(messages.Select(m => (m.Role.Value, m.Text)).ToList()));
        var sampling = new Sampling
        {
            MaxNewTokens = o?.MaxOutputTokens,
            DoSample = o?.Temperature is { } t ? t > 0 : null,
            Temperature = o?.Temperature is > 0 ? o.Temperature : null,
            TopP = o?.TopP,
            TopK = o?.TopK,
            Seed = o?.Seed is { } seed ? unchecked((ulong)seed) : null,
            Stop = o?.StopSequences?.ToArray() ?? [],
        };
        return new GenerationRequest(prompt, sampling.Options(scheduler, prompt));
    }

    static ChatFinishReason Reason(string reason) => reason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this : null;

    /// <summary>Nothing to release: the scheduler belongs to the caller.</summary>
    public void Dispose() { }
}
