namespace Xmtf.Server;

/// <summary>What the server accepts; requests beyond these get 413, 422 or 429.</summary>
public sealed record ServerLimits
{
    /// <summary>Prompt tokens per request; more is 413.</summary>
    public int MaxInputTokens { get; init; } = 1024;
    /// <summary>New tokens per sequence; asking for more is 422, and it caps the model's default.</summary>
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Sequences decoding at once (a request with n choices holds n); more than this in one request is 422.</summary>
    public int MaxConcurrent { get; init; } = 32;
    /// <summary>Requests waiting for a free slot; beyond this a request gets 429.</summary>
    public int MaxQueue { get; init; } = 128;

    /// <summary>Checks that every limit is positive.</summary>
    public void Validate()
    {
        // Every request waits in the queue, if only until the next decode step: max-queue 0 would refuse all.
        if (MaxInputTokens < 1 || MaxNewTokens < 1 || MaxConcurrent < 1 || MaxQueue < 1)
            throw new XmtfException("max-input-tokens, max-new-tokens, max-concurrent and max-queue must be >= 1");
    }
}

/// <summary>An error with the HTTP status it maps to; the message is shown to the client.</summary>
public sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
