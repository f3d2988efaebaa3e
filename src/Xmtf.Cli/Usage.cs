namespace Xmtf.Cli;

/// <summary>The --help text of the model commands.</summary>
static class Usage
{
    const string Model = """
          --model M              model directory or Hub id (org/name[@revision])
          --dtype f32|bf16|int8  weights in memory (compute is fp32); default f32
          --threads N            compute threads (default: all cores)
          --use-bin              read pytorch_model.bin even when safetensors exist
          --use-spiece           mT5: use spiece.model even when tokenizer.json exists
          --revision R, --token T, --offline, --quiet   Hub options (HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT)
        """;

    public static string? Of(string command) => command switch
    {
        "generate" => $$"""
            usage: xmtf generate --model M [options] "<prompt>"
                   xmtf generate --model M [options] -     (JSON lines {"text": ...} or {"ids": [...]} on stdin)

            {{Model}}
              --max-new-tokens N     default: generation_config.json, else transformers' max_length 20
              --min-new-tokens N
              --num-beams K          beam search (with --length-penalty, --early-stopping true|false|never,
                                     --num-return-sequences)
              --do-sample            sampling, with --temperature T --top-k K --top-p P --seed S
              --repetition-penalty P, --no-repeat-ngram-size N
              --stop S               end a sequence once its text contains S (repeatable)
              --json                 print {"text", "ids", "finish_reason", "score"}
              --stream               print tokens as they are generated
              --batch-size N         prompts decoded together in the '-' form (default 8)
            """,
        "tokenize" => """
            usage: xmtf tokenize --model M [--json] [--use-spiece] "<text>" | -
            prints tokenizer(text).input_ids and the tokens; '-' reads JSON lines {"text"} or {"ids"}
            """,
        "score" => $$"""
            usage: xmtf score --model M --prompt "<p>" --choice "<a>" --choice "<b>" [--json]
                   xmtf score --model M -     (JSON lines {"prompt", "choices"} or {"prompt_ids", "choices_ids"})

            Log-likelihood of each choice given the prompt: mT5 scores tokenizer(choice).input_ids (eos
            included) as the decoder target; BLOOM scores " " + choice after the prompt.
            {{Model}}
              --json                 print {"choices": [{"text", "logprob"}], "best"}
              --batch-size N         requests per batch in the '-' form (default 8)
            """,
        _ => null,
    };
}
