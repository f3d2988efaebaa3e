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
        "run" => $$"""
            usage: xmtf run --model M [generation options]

            An interactive session: type a prompt, tokens stream as they are generated; Ctrl-C stops a
            generation, /set NAME VALUE changes a generation option, /show, /help, /bye.
            {{Model}}
              generation options as for 'xmtf generate' (--max-new-tokens, --num-beams, --do-sample, ...)
            """,
        "serve" => $$"""
            usage: xmtf serve --model M [--host 127.0.0.1] [--port 8080] [limits]

            TGI routes (/generate, /generate_stream, /info, /health, /metrics) and OpenAI routes
            (/v1/completions, /v1/chat/completions), with continuous batching.
            {{Model}}
              --max-input-tokens N   longer prompts get 413
              --max-new-tokens N     larger requests get 422
              --max-concurrent N     sequences decoded together
              --max-queue N          waiting requests beyond this get 429
              --grace S              seconds running requests get after SIGTERM/Ctrl-C (default 30)
            """,
        "init" => """
            usage: xmtf init --config NAME --random --out DIR [--dtype f32|bf16] [--seed S]

            Writes a random-weight model of a released checkpoint's shape (config.json,
            generation_config.json, model.safetensors), loadable by transformers.
            NAME: mt0-small, mt0-base, mt0-large, mt0-xl, bloomz-560m, bloomz-1b7, tiny-mt5, tiny-bloom
            """,
        "bench" => """
            usage: xmtf bench --model M | --config NAME [options]
                   xmtf bench --quality --model M [--json]

            Prompt (encoder) and decode speed next to this machine's limits, measured in the same run:
            memory read bandwidth (decoding streams every weight once per token) and fp32 FMA peak.
              --config NAME          a random-weight model of a released shape (cached under the temp dir)
              --dtype f32|bf16|int8  weights in memory (default f32)
              --input-tokens N       prompt length (default 64)
              --new-tokens N         decode steps, eos ignored (default 64)
              --batch N              sequences decoded together (default 1)
              --threads N            compute threads (default: all cores)
              --repeats N            best of N runs (default 3)
              --json                 one JSON object (encode_ms, decode_tokens_per_s, bandwidth_fraction, ...)
              --quality              bf16 and int8 logits against fp32 on the model's golden prompts
            """,
        _ => null,
    };
}
