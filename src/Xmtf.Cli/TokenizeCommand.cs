namespace Xmtf.Cli;

/// <summary><c>xmtf tokenize --model M [--json] "text" | -</c>: ids as <c>tokenizer(text).input_ids</c>.</summary>
static class TokenizeCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("tokenize", argv, ["model", .. HubCli.ValueOptions], ["json", "use-spiece", .. HubCli.FlagOptions]);
        var dir = HubCli.ResolveModel(a, a.Require("model", "tokenize"));
        var tok = Tokenization.Tokenizers.Load(dir, a.Flag("use-spiece"));
        var text = ModelArgs.SingleText(a, "tokenize");
        object Result(int[] ids) => new { ids, tokens = ids.Select(i => i < tok.VocabSize ? tok.IdToToken(i) : null).ToArray() };
        if (text is null)
        {
            var lines = ModelArgs.ReadLines(Console.In);
            var results = lines.Select((o, i) => ModelArgs.LineIds(o, i + 1, t => tok.Encode(t))).ToList();
            foreach (var ids in results) ModelArgs.WriteJson(Result(ids));
            return 0;
        }
        var r = tok.Encode(text);
        if (a.Flag("json")) ModelArgs.WriteJson(Result(r));
        else
        {
            Console.WriteLine(string.Join(' ', r));
            Console.WriteLine(string.Join(' ', r.Select(tok.IdToToken)));
        }
        return 0;
    }
}
