using System.Diagnostics;

namespace Xmtf.Tests.Cli;

/// <summary>Runs the real xmtf executable (built next to the tests) as a child process.</summary>
static class XmtfProcess
{
    public static (int Code, string Out, string Err) RunWithInput(string stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            StandardOutputEncoding = System.Text.Encoding.UTF8, StandardErrorEncoding = System.Text.Encoding.UTF8,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "xmtf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("xmtf hung: " + string.Join(' ', args)); }
        return (p.ExitCode, outp.Result, err.Result);
    }

    public static (int Code, string Out, string Err) Run(params string[] args) => RunWithInput("", args);
}
