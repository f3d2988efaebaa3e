using System.Diagnostics;
using Spectre.Console;
using Xmtf.Hub;

namespace Xmtf.Cli;

/// <summary>
/// The Hub options every model-taking command accepts, and model resolution with progress on stderr:
/// bars with bytes, speed and ETA on a terminal, plain lines when stderr is redirected, nothing with --quiet.
/// </summary>
/// <example>
/// <code>
/// var a = Args.Parse("generate", argv, ["model", .. HubCli.ValueOptions], [.. HubCli.FlagOptions]);
/// var dir = HubCli.ResolveModel(a, a.Require("model", "generate"));
/// </code>
/// </example>
public static class HubCli
{
    /// <summary>Options taking a value: <c>--token</c>, <c>--revision</c>.</summary>
    public static readonly string[] ValueOptions = ["token", "revision"];
    /// <summary>Flags: <c>--offline</c>, <c>--quiet</c>.</summary>
    public static readonly string[] FlagOptions = ["offline", "quiet"];
    /// <summary>Help lines for those options, to append to a command's usage.</summary>
    public const string Help =
        "  --revision R   branch, tag or commit of a Hub model (default: main, or org/name@R)\n" +
        "  --token T      Hugging Face token for gated or private models (default: $HF_TOKEN)\n" +
        "  --offline      use only the local cache (also HF_HUB_OFFLINE=1)\n" +
        "  --quiet        no download progress\n";

    /// <summary>The environment's Hub options (HF_TOKEN, HF_ENDPOINT, HF_HUB_CACHE...) overridden by the command line.</summary>
    public static HubOptions Options(Args a)
    {
        var env = HubOptions.FromEnvironment();
        return env with { Token = a.Get("token") ?? env.Token, Offline = a.Flag("offline") || env.Offline, Revision = a.Get("revision") };
    }

    /// <summary>A local model directory for <paramref name="model"/>: a directory as is, or a Hub id downloaded into the cache.</summary>
    public static string ResolveModel(Args a, string model) =>
        Directory.Exists(model) ? model : WithProgress(a, options => ModelLocator.Resolve(model, options));

    /// <summary>Runs <paramref name="work"/> with the command's Hub options, reporting its downloads on stderr.</summary>
    public static T WithProgress<T>(Args a, Func<HubOptions, T> work)
    {
        var options = Options(a);
        if (a.Flag("quiet")) return work(options);
        if (Console.IsErrorRedirected) return work(options with { Log = Console.Error.WriteLine, Progress = PlainProgress() });
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                     new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                return work(options with
                {
                    Log = m => console.MarkupLine($"[grey]{Markup.Escape(m)}[/]"),
                    Progress = p =>
                    {
                        if (!tasks.TryGetValue(p.File, out var t)) tasks[p.File] = t = ctx.AddTask(Markup.Escape(p.File), maxValue: p.Total);
                        t.Value = p.Received;
                        if (p.Stage == DownloadStage.Finished) t.StopTask();
                    },
                });
            });
    }

    /// <summary>One line when a file starts and one when it is done, for logs.</summary>
    static Action<DownloadProgress> PlainProgress()
    {
        var clocks = new Dictionary<string, (Stopwatch Clock, long From)>();
        return p =>
        {
            if (p.Stage == DownloadStage.Started && !clocks.ContainsKey(p.File))
            {
                clocks[p.File] = (Stopwatch.StartNew(), p.Received);
                Console.Error.WriteLine($"downloading {p.File} ({Size(p.Total)})");
            }
            else if (p.Stage == DownloadStage.Finished && clocks.TryGetValue(p.File, out var c))
            {
                var s = Math.Max(c.Clock.Elapsed.TotalSeconds, 1e-3);
                Console.Error.WriteLine($"downloaded {p.File} ({Size(p.Total)} in {s:0.0} s, {Size((long)((p.Total - c.From) / s))}/s)");
            }
        };
    }

    /// <summary>A byte count in decimal units, as the Hub shows sizes.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1000 => $"{bytes} B",
        < 1_000_000 => $"{bytes / 1e3:0.0} kB",
        < 1_000_000_000 => $"{bytes / 1e6:0.0} MB",
        _ => $"{bytes / 1e9:0.00} GB",
    };
}
