using Microsoft.Extensions.Hosting;
using Xmtf.Server;

namespace Xmtf.Cli;

/// <summary>
/// <c>xmtf serve --model M [--host 127.0.0.1] [--port 8080] [limits]</c>: the HTTP server (TGI and OpenAI
/// routes) until SIGTERM or Ctrl-C, which stop taking requests and give running ones <c>--grace</c> seconds.
/// </summary>
static class ServeCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("serve", argv,
            [.. ModelArgs.Values, "host", "port", "max-input-tokens", "max-new-tokens", "max-concurrent", "max-queue", "grace"], ModelArgs.Flags);
        if (a.Positional.Count > 0) throw new XmtfException($"'xmtf serve' takes no positional arguments (got '{a.Positional[0]}')");
        var d = new ServerLimits();
        var limits = new ServerLimits
        {
            MaxInputTokens = a.GetInt("max-input-tokens") ?? d.MaxInputTokens,
            MaxNewTokens = a.GetInt("max-new-tokens") ?? d.MaxNewTokens,
            MaxConcurrent = a.GetInt("max-concurrent") ?? d.MaxConcurrent,
            MaxQueue = a.GetInt("max-queue") ?? d.MaxQueue,
        };
        limits.Validate();
        int port = a.GetInt("port") ?? 8080;
        if (port is < 0 or > 65535) throw new XmtfException("--port must be between 0 and 65535");
        double grace = a.GetDouble("grace") ?? 30;
        if (grace < 0) throw new XmtfException("--grace must be >= 0 seconds");
        using var pipeline = ModelArgs.Load(a, "serve");
        using var scheduler = new Scheduler(pipeline, limits);
        var app = XmtfServer.Build(scheduler, a.Require("model", "serve"), a.Get("host") ?? "127.0.0.1", port, TimeSpan.FromSeconds(grace));
        app.Start();
        Console.Error.WriteLine($"xmtf serve: {pipeline.ModelType} model from {pipeline.Directory} on {string.Join(", ", app.Urls)}");
        app.WaitForShutdown();
        return 0;
    }
}
