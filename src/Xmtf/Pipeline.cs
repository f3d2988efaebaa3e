using Xmtf.Generation;
using Xmtf.IO;
using Xmtf.Models.Bloom;
using Xmtf.Models.T5;
using Xmtf.Tensors;
using Xmtf.Tokenization;

namespace Xmtf;

/// <summary>How to load a model directory.</summary>
public sealed record LoadOptions
{
    /// <summary>How weights are kept in memory (compute is fp32 either way).</summary>
    public WeightType DType { get; init; } = WeightType.F32;
    /// <summary>Read <c>pytorch_model.bin</c> even when safetensors exist.</summary>
    public bool PreferBin { get; init; }
    /// <summary>Use <c>spiece.model</c> even when a <c>tokenizer.json</c> exists (mT5 only).</summary>
    public bool ForceSentencePiece { get; init; }
}

/// <summary>One generated text: its tokens (new tokens only, eos included when generated).</summary>
public sealed record GeneratedText(string Text, int[] Ids, string FinishReason, double? Score);

/// <summary>
/// A checkpoint with its tokenizer: text in, text out, exactly as transformers' tokenizer + model. The
/// family (mT5/mT0 or BLOOM/BLOOMZ) comes from config.json's <c>model_type</c>.
/// </summary>
public sealed class Pipeline : IDisposable
{
    public IGenerativeModel Model { get; }
    public IChoiceScorer Scorer { get; }
    public ITokenizer Tokenizer { get; }
    public string Directory { get; }
    public string ModelType { get; }
    public WeightType DType { get; }

    Pipeline(string dir, string modelType, IGenerativeModel model, IChoiceScorer scorer, ITokenizer tokenizer, WeightType dtype)
    {
        Directory = dir; ModelType = modelType; Model = model; Scorer = scorer; Tokenizer = tokenizer; DType = dtype;
    }

    public static Pipeline Load(string dir, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var tokenizer = Tokenizers.Load(dir, options.ForceSentencePiece);
        string type;
        using (var probe = Checkpoint.OpenConfig(dir)) type = probe.ModelType;
        switch (type)
        {
            case "t5" or "mt5":
                var t5 = MT5Model.Load(dir, options.DType, options.PreferBin);
                return new Pipeline(dir, type, t5, t5, tokenizer, options.DType);
            case "bloom":
                var bloom = BloomModel.Load(dir, options.DType, options.PreferBin);
                return new Pipeline(dir, type, bloom, bloom, tokenizer, options.DType);
            default:
                throw new XmtfException($"{dir}: model_type '{type}' is not supported (mt5, t5 and bloom are)");
        }
    }

    /// <summary>Prompt ids as <c>tokenizer(text).input_ids</c> (mT5 appends eos; BLOOM adds nothing).</summary>
    public int[] EncodePrompt(string text) => Tokenizer.Encode(text);

    /// <summary>Text of generated ids, special tokens skipped, as <c>tokenizer.decode(ids, skip_special_tokens=True)</c>.</summary>
    public string Decode(ReadOnlySpan<int> ids) => Tokenizer.Decode(Clip(ids), skipSpecialTokens: true);

    // Ids past the tokenizer (mT5 pads its vocabulary to 250112) have no text.
    int[] Clip(ReadOnlySpan<int> ids) => ids.ToArray().Where(i => i < Tokenizer.VocabSize).ToArray();

    /// <summary>Generates for a batch of prompt id lists; result[p] has NumReturnSequences entries.</summary>
    public GeneratedText[][] Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, CancellationToken cancel = default)
    {
        var stops = options.StopStrings;
        Generator.TokenCallback? onToken = null;
        List<int>[]? seen = null;
        if (stops.Count > 0)
        {
            seen = new List<int>[prompts.Count * Math.Max(options.NumReturnSequences, 1)];
            onToken = (row, token) =>
            {
                var list = seen[row] ??= new List<int>();
                list.Add(token);
                var text = Decode(list.ToArray());
                return stops.Any(s => text.Contains(s, StringComparison.Ordinal));
            };
        }
        return Generator.Generate(Model, prompts, options, onToken, cancel)
            .Select(seqs => seqs.Select(s => new GeneratedText(Decode(s.Tokens), s.Tokens, s.FinishReason, s.Score)).ToArray())
            .ToArray();
    }

    /// <summary>Streams the text pieces of one generation as tokens arrive (greedy or sampling).</summary>
    public async IAsyncEnumerable<string> StreamAsync(int[] prompt, GenerationOptions options,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel = default)
    {
        var text = new TextStream(this);
        await foreach (var t in Generator.StreamAsync(Model, prompt, options, cancel))
        {
            var piece = text.Add(t);
            if (piece.Length > 0) yield return piece;
            if (options.StopStrings.Any(s => text.Text.Contains(s, StringComparison.Ordinal))) yield break;
        }
        var rest = text.Flush();
        if (rest.Length > 0) yield return rest;
    }

    /// <summary>
    /// Choice ids for scoring by the family's rule: mT5 targets are <c>tokenizer(choice).input_ids</c>
    /// (eos included); BLOOM choices are <c>" " + choice</c> without special tokens, appended to the prompt.
    /// </summary>
    public int[] EncodeChoice(string choice) => Model.Family == ModelFamily.EncoderDecoder
        ? Tokenizer.Encode(choice)
        : Tokenizer.Encode(" " + choice, addSpecialTokens: false);

    /// <summary>Sum of log-probs of each choice given the prompt (one request per prompt, choices batched).</summary>
    public double[][] Score(IReadOnlyList<ScoreRequest> requests) =>
        Scorer.ScoreTokens(requests).Select(r => r.Select(c => c.Sum(x => (double)x)).ToArray()).ToArray();

    public void Dispose() => Model.Dispose();
}
