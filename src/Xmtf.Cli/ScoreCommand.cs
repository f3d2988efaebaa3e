using System.Text.Json.Nodes;
using Xmtf.Generation;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf score --model M --prompt P --choice A --choice B [--json]</c>: rank classification, each
/// choice's log-likelihood given the prompt (mT5: target with eos; BLOOM: " " + choice after the prompt).
/// </summary>
static class ScoreCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("score", argv, [.. ModelArgs.Values, "prompt", "choice", "batch-size"], [.. ModelArgs.Flags, "json"]);
        using var p = ModelArgs.Load(a, "score");
        if (a.Positional.Count == 1 && a.Positional[0] == "-")
        {
            int batch = a.GetInt("batch-size") ?? 8;
            if (batch < 1) throw new XmtfException("--batch-size must be >= 1");
            var lines = ModelArgs.ReadLines(Console.In);
            var requests = lines.Select((l, i) => Request(p, l, i + 1)).ToList();
            foreach (var chunk in requests.Chunk(batch))
            {
                var scores = p.Score(chunk.Select(c => c.Request).ToList());
                for (int i = 0; i < chunk.Length; i++) ModelArgs.WriteJson(Json(chunk[i].Texts, scores[i]));
            }
            return 0;
        }
        if (a.Positional.Count > 0) throw new XmtfException("'xmtf score' takes --prompt and --choice options, or '-' to read JSON lines from stdin");
        var prompt = a.Require("prompt", "score");
        var choices = a.GetAll("choice");
        if (choices.Count == 0) throw new XmtfException("'xmtf score' needs at least one --choice");
        var req = new ScoreRequest(p.EncodePrompt(prompt), choices.Select(p.EncodeChoice).ToArray());
        var s = p.Score([req])[0];
        if (a.Flag("json")) ModelArgs.WriteJson(Json(choices.ToArray(), s));
        else
            for (int i = 0; i < s.Length; i++)
                Console.Out.WriteLine($"{(i == Best(s) ? "*" : " ")} {s[i],12:F4}  {choices[i]}");
        return 0;
    }

    static (ScoreRequest Request, string?[] Texts) Request(Pipeline p, JsonObject o, int line)
    {
        var prompt = ModelArgs.LineIds(o, line, p.EncodePrompt, "prompt", "prompt_ids");
        if (o["choices_ids"] is JsonArray cids)
        {
            var ids = cids.Select((c, i) => c is JsonArray arr ? ModelArgs.Ints(arr, $"line {line}: choices_ids[{i}]") : throw new XmtfException($"stdin line {line}: choices_ids must be an array of id arrays")).ToArray();
            return (new ScoreRequest(prompt, ids), ids.Select(x => (string?)p.Decode(x)).ToArray());
        }
        if (o["choices"] is JsonArray texts)
        {
            var t = texts.Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new XmtfException($"stdin line {line}: choices must be strings")).ToArray();
            return (new ScoreRequest(prompt, t.Select(p.EncodeChoice).ToArray()), t);
        }
        throw new XmtfException($"stdin line {line}: needs \"choices\" (strings) or \"choices_ids\" (arrays of token ids)");
    }

    static int Best(double[] s) => s.Length == 0 ? -1 : Array.IndexOf(s, s.Max());

    static object Json(string?[] texts, double[] s) => new
    {
        choices = texts.Select((t, i) => new { text = t, logprob = s[i] }),
        best = Best(s),
    };
}
