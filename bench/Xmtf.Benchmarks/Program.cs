using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Xmtf.Benchmarks -- --filter '*MatMul*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(Xmtf.Benchmarks.MatMulBenchmarks).Assembly).Run(args);
