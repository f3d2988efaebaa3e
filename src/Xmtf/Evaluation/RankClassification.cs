using Xmtf.Generation;
using Xmtf.Tokenization;

namespace Xmtf.Evaluation;

/// <summary>One rendered example to classify: its prompt (<c>Input</c>), the answer choices and the gold choice's
/// index; <c>Config</c> is the language the row comes from, <c>Index</c> its row number in the split.</summary>
public sealed record EvalItem(string Task, string Config, string Template, int Index, string Input, string[] Choices, int Gold);

/// <summary>A classified example: the summed log-probability of each choice and the argmax.</summary>
public sealed record ExampleResult(string Task, string Config, string Template, int Index, double[] Logprobs, int Prediction, int Gold);

/// <summary>
/// Rank classification as the paper's evaluation (t-zero <c>muennighoff/upgrdps</c>): each choice is scored by the
/// sum of its tokens' log-probabilities given the prompt, without length normalisation, and the best one wins.
/// </summary>
public static class RankClassification
{
    /// <summary>Prompt token limits the paper ran with (<c>--max_length</c>).</summary>
    public const int EncoderDecoderMaxInput = 512, DecoderOnlyMaxInput = 2048;

    /// <summary>The rows <c>[start, end)</c> rendered with a template; rows the template renders empty for are
    /// skipped, as promptsource does (the effect-only / cause-only COPA prompts).</summary>
    public static IEnumerable<EvalItem> Render(string task, string config, PromptTemplate template,
        IReadOnlyList<IReadOnlyDictionary<string, object?>> rows, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            var parts = template.Apply(rows[i]);
            if (parts is [""]) continue;
            var choices = template.AnswerChoicesList(rows[i])
                ?? throw new XmtfException($"template '{template.Name}' has no answer choices, so it cannot rank");
            if (parts.Length != 2) throw new XmtfException($"template '{template.Name}', row {i}: expected one target, got {parts.Length - 1}");
            int gold = Array.IndexOf(choices, parts[1]);
            if (gold < 0) throw new XmtfException($"template '{template.Name}', row {i}: the target '{parts[1]}' is not one of the answer choices");
            yield return new EvalItem(task, config, template.Name, i, parts[0], choices, gold);
        }
    }

    /// <summary>The token ids of one example, as the paper builds them. mT0: the prompt without special tokens
    /// (no eos) cut to 512 tokens; each choice alone, no leading space, with its eos. BLOOMZ: the prompt without
    /// special tokens cut to 2048; each choice as " " + choice alone, without special tokens.</summary>
    public static ScoreRequest BuildRequest(ITokenizer tokenizer, ModelFamily family, string input, IReadOnlyList<string> choices)
    {
        bool seq2seq = family == ModelFamily.EncoderDecoder;
        var prompt = tokenizer.Encode(input, addSpecialTokens: false);
        int max = seq2seq ? EncoderDecoderMaxInput : DecoderOnlyMaxInput;
        if (prompt.Length > max) prompt = prompt[..max]; // truncation keeps the start, as transformers' default side
        var choiceIds = choices.Select(c => seq2seq ? tokenizer.Encode(c, addSpecialTokens: true) : tokenizer.Encode(" " + c, addSpecialTokens: false)).ToArray();
        return new ScoreRequest(prompt, choiceIds);
    }

    /// <summary>Scores the items <paramref name="batchSize"/> examples per scorer call, yielding each result as its batch completes.</summary>
    public static IEnumerable<ExampleResult> Score(IEnumerable<EvalItem> items, ITokenizer tokenizer, IChoiceScorer scorer, int batchSize)
    {
        foreach (var batch in items.Chunk(batchSize))
        {
            var scores = scorer.ScoreTokens(batch.Select(x => BuildRequest(tokenizer, scorer.Family, x.Input, x.Choices)).ToList());
            for (int k = 0; k < batch.Length; k++)
            {
                var x = batch[k];
                var sums = scores[k].Select(tokens => tokens.Sum(t => (double)t)).ToArray();
                yield return new ExampleResult(x.Task, x.Config, x.Template, x.Index, sums, Argmax(sums), x.Gold);
            }
        }
    }

    /// <summary>Index of the largest value; the first one on ties.</summary>
    public static int Argmax(IReadOnlyList<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Count; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
