namespace Xmtf.Generation;

/// <summary>Helpers shared by the families' <see cref="IChoiceScorer"/> implementations.</summary>
static class Scoring
{
    /// <summary>
    /// log_softmax(logits[firstRow + t])[target[t]] for each target token, where logits rows are vocab wide.
    /// </summary>
    public static float[] TokenLogProbs(float[] logits, int firstRow, int[] targets, int vocab)
    {
        var lp = new float[targets.Length];
        var row = new float[vocab];
        for (int t = 0; t < targets.Length; t++)
        {
            logits.AsSpan((firstRow + t) * vocab, vocab).CopyTo(row);
            Tensors.Kernels.LogSoftmax(row);
            lp[t] = (uint)targets[t] < (uint)vocab ? row[targets[t]] : throw new XmtfException($"choice token id {targets[t]} is outside the vocabulary");
        }
        return lp;
    }
}
