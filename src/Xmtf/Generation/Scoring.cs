namespace Xmtf.Generation;

/// <summary>Helpers shared by the families' <see cref="IChoiceScorer"/> implementations.</summary>
static class Scoring
{
    /// <summary>
    /// log_softmax(logits[firstRow + t])[target[t]] for each target token, where logits rows are vocab wide.
    /// </summary>
    public static float[] TokenLogProbs(ReadOnlySpan<float> logits, int firstRow, int[] targets, int vocab)
    {
        var lp = new float[targets.Length];
        for (int t = 0; t < targets.Length; t++)
        {
            if ((uint)targets[t] >= (uint)vocab) throw new XmtfException($"choice token id {targets[t]} is outside the vocabulary");
            // log_softmax(row)[target] = row[target] - logsumexp(row): no copy of the row needed.
            var row = logits.Slice((firstRow + t) * vocab, vocab);
            lp[t] = row[targets[t]] - Tensors.Kernels.LogSumExp(row);
        }
        return lp;
    }
}
