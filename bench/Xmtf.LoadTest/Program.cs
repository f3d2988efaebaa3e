using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Xmtf;
using Xmtf.LoadTest;
using Xmtf.Server;
using Xmtf.Tensors;

// Load test of xmtf serve on loopback: an mt0-small-shaped random model, the same requests sent one at a time
// and then by 32 concurrent clients. Prints throughput and latency; exits 1 on any error or when concurrent
// (batched) throughput does not beat sequential. Stops by itself: fixed request counts and a deadline.
//   dotnet run -c Release --project bench/Xmtf.LoadTest [-- --clients 32 --requests 2 --sequential 8 --max-tokens 16]
int Arg(string name, int fallback) => args.SkipWhile(a => a != "--" + name).Skip(1).Select(int.Parse).DefaultIfEmpty(fallback).First();
int clients = Arg("clients", 32), perClient = Arg("requests", 2), sequential = Arg("sequential", 8), maxTokens = Arg("max-tokens", 16);
using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(Arg("minutes", 10)));

var dir = Path.Combine(Path.GetTempPath(), "xmtf-loadtest-mt0-small");
if (!File.Exists(Path.Combine(dir, "model.safetensors")))
{
    var sw = Stopwatch.StartNew();
    RandomMt5.Write(dir, FindFixture("tiny-mt5"), dModel: 512, dFf: 1024, heads: 6, dKv: 64, layers: 8, vocab: 250112);
    Console.WriteLine($"wrote a random mt0-small-shaped model to {dir} in {sw.Elapsed.TotalSeconds:F1} s");
}
using var pipeline = Pipeline.Load(dir, new LoadOptions { DType = WeightType.BF16 });
using var scheduler = new Scheduler(pipeline, new ServerLimits { MaxConcurrent = clients, MaxQueue = clients * 2 });
await using var app = XmtfServer.Build(scheduler, "random-mt0-small", port: 0);
await app.StartAsync();
using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(10) };
Console.WriteLine($"serving on {app.Urls.First()}, {Environment.ProcessorCount} cores, {clients} clients, max_tokens {maxTokens}");

var words = "the quick brown fox jumps over the lazy dog while a cat sleeps in the warm sun".Split(' ');
string PromptOf(int i) => "Translate to English: " + string.Join(' ', Enumerable.Range(0, 12 + i % 8).Select(j => words[(i + j) % words.Length]));

await Send(0); // warm-up
var seq = await Phase("sequential", 1, sequential);
var conc = await Phase("concurrent", clients, perClient);
Console.WriteLine($"concurrent / sequential throughput: {conc.TokensPerSecond / seq.TokensPerSecond:F2}x");
await app.StopAsync();
bool ok = seq.Errors == 0 && conc.Errors == 0 && conc.TokensPerSecond > seq.TokensPerSecond;
Console.WriteLine(ok ? "OK" : "FAILED");
return ok ? 0 : 1;

async Task<(double Seconds, int Tokens)> Send(int i)
{
    var sw = Stopwatch.StartNew();
    using var r = await http.PostAsJsonAsync("/v1/completions", new { prompt = PromptOf(i), max_tokens = maxTokens, temperature = 0 }, deadline.Token);
    if (!r.IsSuccessStatusCode) throw new HttpRequestException($"{(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
    var body = await r.Content.ReadFromJsonAsync<JsonElement>();
    return (sw.Elapsed.TotalSeconds, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
}

async Task<(double TokensPerSecond, int Errors)> Phase(string name, int workers, int each)
{
    var latencies = new List<double>();
    int tokens = 0, errors = 0;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
    {
        for (int k = 0; k < each; k++)
        {
            try
            {
                var (s, n) = await Send(w * each + k);
                lock (latencies) { latencies.Add(s); tokens += n; }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                Interlocked.Increment(ref errors);
                Console.WriteLine($"  error: {e.Message}");
            }
        }
    })));
    double wall = sw.Elapsed.TotalSeconds;
    latencies.Sort();
    double P(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
    Console.WriteLine($"{name,-10}: {latencies.Count} requests, {errors} errors, {tokens} tokens in {wall:F1} s = {tokens / wall:F1} tokens/s, " +
        $"{latencies.Count / wall:F2} requests/s, latency p50 {P(0.5):F2} s, p99 {P(0.99):F2} s");
    return (tokens / wall, errors);
}

static string FindFixture(string name)
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        var f = Path.Combine(d.FullName, "shared", "fixtures", name);
        if (Directory.Exists(f)) return f;
    }
    throw new DirectoryNotFoundException($"shared/fixtures/{name} not found above {AppContext.BaseDirectory}");
}
