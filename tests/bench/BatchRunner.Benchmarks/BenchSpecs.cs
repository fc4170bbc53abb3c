namespace BatchRunner.Benchmarks;

/// <summary>The sweeps the benchmarks run: a 10×10×10×10 grid (10,000 points) repeated, so a million indexes is 100 repeats.</summary>
internal static class BenchSpecs
{
    /// <param name="command">The command as a YAML flow sequence.</param>
    /// <param name="extraSpec">More spec fields, each line indented as a field of spec.</param>
    public static string GridSweep(string name, string command, int repeats, string extraSpec = "") => $"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata:
          name: {name}
        spec:
          command: {command}
          parallelism: 2
        {extraSpec}
          sweep:
            grid:
              alpha: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
              beta: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
              gamma: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
              delta: [true, false, 10, 20, 30, 40, 50, 60, 70, 80]
            repeats: {repeats}
            seed: 42
        """;
}
