using Xmtf.Generation;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf run --model M [generate options]</c>: an interactive session like <c>ollama run</c>. Each line is a
/// prompt whose tokens stream as they are generated; <c>/set</c> changes a generate option for the next
/// prompts; Ctrl-C stops the current generation, not the session. Reads plain lines when stdin is not a terminal.
/// </summary>
static class RunCommand
{
    const string Help = """
        /set NAME VALUE   set a generate option for the next prompts, e.g. /set max-new-tokens 64, /set temperature 0.7
        /set do-sample    sample instead of greedy decoding
        /show             the command line in effect, /set options included
        /help             this help
        /bye              leave (Ctrl-D too)
        Ctrl-C stops the current generation.
        """;

    public static int Run(string[] argv)
    {
        using var cancel = new CurrentGeneration();
        return Repl(argv, Console.In, Console.Out, interactive: !Console.IsInputRedirected, cancel);
    }

    /// <summary>The session over <paramref name="input"/>; prompts and banners are written only when interactive.</summary>
    internal static int Repl(string[] argv, TextReader input, TextWriter output, bool interactive, CurrentGeneration? cancel = null)
    {
        var settings = argv.ToList();
        var a = Parse(settings);
        using var p = ModelArgs.Load(a, "run");
        var options = Checked(a, p);
        if (interactive) output.WriteLine($"{p.ModelType} model from {p.Directory}. Type a prompt, /help for commands, /bye to leave.");
        while (true)
        {
            if (interactive) output.Write(">>> ");
            var line = input.ReadLine();
            if (line is null || line.Trim() == "/bye") return 0;
            line = line.Trim();
            if (line.Length == 0) continue;
            if (line is "/help" or "/?") output.WriteLine(Help);
            else if (line == "/show") output.WriteLine(string.Join(" ", settings));
            else if (line.StartsWith("/set"))
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length is < 2 or > 3) { output.WriteLine("usage: /set NAME [VALUE]"); continue; }
                if (ModelArgs.Values.Contains(words[1]) || ModelArgs.Flags.Contains(words[1])) { output.WriteLine($"'{words[1]}' is fixed for the session; restart 'xmtf run' to change it"); continue; }
                // A later value of an option overrides the earlier one, so /set appends to the command line.
                List<string> next = [.. settings, "--" + words[1], .. words[2..]];
                try
                {
                    options = Checked(Parse(next), p);
                    settings = next;
                }
                catch (XmtfException e) { output.WriteLine($"error: {e.Message}"); }
            }
            else if (line.StartsWith('/')) output.WriteLine($"unknown command '{line.Split(' ')[0]}' (see /help)");
            else Generate(p, line, options, output, cancel);
        }
    }

    static Args Parse(List<string> settings)
    {
        var a = Args.Parse("run", settings.ToArray(), GenerateCommand.Values.Where(v => v != "batch-size"), [.. ModelArgs.Flags, "do-sample"]);
        if (a.Positional.Count > 0) throw new XmtfException($"'xmtf run' takes no positional arguments (got '{a.Positional[0]}'); type prompts once it starts");
        return a;
    }

    static GenerationOptions Checked(Args a, Pipeline p)
    {
        var o = GenerateCommand.Options(a, p.Model.Defaults.Options);
        o.Validate();
        return o;
    }

    static void Generate(Pipeline p, string prompt, GenerationOptions o, TextWriter output, CurrentGeneration? cancel)
    {
        using var cts = new CancellationTokenSource();
        if (cancel is not null) cancel.Current = cts;
        try
        {
            var ids = p.EncodePrompt(prompt);
            if (o.NumBeams == 1 && o.NumReturnSequences == 1)
                foreach (var piece in p.StreamAsync(ids, o, cts.Token).ToBlockingEnumerable(cts.Token))
                {
                    output.Write(piece);
                    output.Flush();
                }
            else
                output.Write(string.Join("\n", p.Generate([ids], o, cts.Token).Single().Select(g => g.Text)));
            output.WriteLine();
        }
        catch (OperationCanceledException) { output.WriteLine(" [stopped]"); }
        catch (XmtfException e) { output.WriteLine($"error: {e.Message}"); }
        finally { if (cancel is not null) cancel.Current = null; }
    }

    /// <summary>Routes Ctrl-C to the generation running now, so it never ends the session.</summary>
    internal sealed class CurrentGeneration : IDisposable
    {
        public volatile CancellationTokenSource? Current;

        public CurrentGeneration() => Console.CancelKeyPress += OnCancel;

        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            if (Current is { } c) c.Cancel();
            else Console.Error.Write("\n(use /bye or Ctrl-D to leave)\n>>> ");
        }

        public void Dispose() => Console.CancelKeyPress -= OnCancel;
    }
}
