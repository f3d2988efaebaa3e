using Xmtf;
using Xmtf.Cli;

// Each command is a static class with Run(string[] args) returning the exit code.
var commands = new Dictionary<string, (Func<string[], int> Run, string Help)>
{
    ["generate"] = (GenerateCommand.Run, "generate text for a prompt (greedy, beam search or sampling)"),
    ["tokenize"] = (TokenizeCommand.Run, "show the token ids of a text"),
    ["score"] = (ScoreCommand.Run, "rank choices by their log-likelihood given a prompt"),
    ["download"] = (HubCommands.Download, "download a model from the Hugging Face Hub into the cache"),
    ["list"] = (HubCommands.List, "list the models in the Hub cache with their sizes"),
    ["rm"] = (HubCommands.Remove, "remove a model from the Hub cache"),
    ["eval"] = (EvalCommand.Run, EvalCommand.Help),
    ["prompts"] = (PromptsCommand.Run, PromptsCommand.Help),
    ["init"] = (InitCommand.Run, "write a random-weight model of a released checkpoint's shape"),
    ["bench"] = (BenchCommand.Run, "measure prompt and decode speed against the machine's limits, or dtype quality"),
    ["serve"] = (ServeCommand.Run, "serve a model over HTTP (TGI and OpenAI-compatible routes)"),
    ["run"] = (RunCommand.Run, "chat with a model interactively (tokens stream; /help inside)"),
};

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine("xmtf: BLOOMZ and mT0 models in .NET\n\nusage: xmtf <command> [options]\n\ncommands:");
    foreach (var (name, c) in commands) Console.WriteLine($"  {name,-10} {c.Help}");
    return args.Length == 0 ? 2 : 0;
}
if (!commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine($"xmtf: unknown command '{args[0]}' (see 'xmtf --help')");
    return 2;
}
if (Usage.Of(args[0]) is { } usage && args.Skip(1).Any(a => a is "--help" or "-h"))
{
    Console.WriteLine(usage);
    return 0;
}
try
{
    Console.OutputEncoding = System.Text.Encoding.UTF8;
    return command.Run(args[1..]);
}
catch (XmtfException e)
{
    Console.Error.WriteLine($"xmtf {args[0]}: error: {e.Message}");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException)
{
    Console.Error.WriteLine($"xmtf {args[0]}: error: {e.Message}");
    return 1;
}
