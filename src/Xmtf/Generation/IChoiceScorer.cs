namespace Xmtf.Generation;

/// <summary>Which half of the family a checkpoint belongs to; decides the scoring rule.</summary>
public enum ModelFamily
{
    /// <summary>mT0 / mT5: the prompt goes to the encoder, each choice is a decoder target ending in eos.</summary>
    EncoderDecoder,
    /// <summary>BLOOMZ / BLOOM: prompt and choice are one sequence; only the choice's tokens are scored.</summary>
    DecoderOnly,
}

/// <summary>One prompt and its candidate continuations, all as token ids used exactly as given.</summary>
public sealed record ScoreRequest(int[] PromptIds, int[][] ChoiceIds);

/// <summary>
/// Rank classification: the log-probability of each choice token given the prompt (and the choice tokens
/// before it). The sum over a choice's tokens is its score. Implementations batch the requests and share
/// one prompt pass (the encoder for mT5) between the choices of a request.
/// </summary>
public interface IChoiceScorer
{
    ModelFamily Family { get; }

    /// <summary>result[request][choice][token] = log p(choice token | prompt, previous choice tokens).</summary>
    float[][][] ScoreTokens(IReadOnlyList<ScoreRequest> requests);
}
