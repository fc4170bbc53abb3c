using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using SharpFuzz;

// Each target must only ever return or throw what it documents: anything else (an unexpected exception, a hang past
// AFL's time limit, a crash) is a finding.
switch (args.FirstOrDefault())
{
    case "parser":
        Fuzzer.Run(text =>
        {
            // Every input is a document or a list of errors naming fields; never an exception.
            var parsed = BatchJobParser.Parse(text);
            if (!parsed.IsValid && parsed.Errors.Count == 0)
            {
                throw new InvalidOperationException("invalid without an error");
            }

            if (parsed.IsValid)
            {
                _ = BatchRunner.Core.Runs.RunIdentity.For(parsed.Job!);
                _ = new BatchRunner.Core.Sweeps.SweepPlan(parsed.Job!.Spec).For(0);
            }
        });
        break;
    case "outputs":
        Fuzzer.Run(stream =>
        {
            // Any bytes, read as JSON lines and as CSV: counts, never an exception; rows + malformed never more than lines.
            var bytes = ReadAll(stream);
            var lines = bytes.Count(b => b == (byte)'\n') + 1;
            foreach (var format in new[] { ResultsFormat.Jsonl, ResultsFormat.Csv })
            {
                var summary = OutputInspector.Inspect([("r." + OutputInspector.Extension(format), bytes.Length, () => new MemoryStream(bytes))], format);
                if (summary.Rows < 0 || summary.Malformed < 0 || summary.Rows + summary.Malformed > lines)
                {
                    throw new InvalidOperationException($"{format}: {summary.Rows} rows and {summary.Malformed} malformed of {lines} lines");
                }
            }

            foreach (var key in System.Text.Encoding.UTF8.GetString(bytes).Split('\n'))
            {
                var name = ResultColumns.Sanitize(key);
                if (name.Length == 0 || name.Length > ResultColumns.MaxNameLength || name.Any(char.IsControl))
                {
                    throw new InvalidOperationException($"a column name SQL cannot take: {name}");
                }
            }
        });
        break;
    default:
        Console.Error.WriteLine("usage: BatchRunner.Fuzz parser|outputs  (under afl-fuzz, see tests/fuzz/run.sh)");
        return 2;
}

return 0;

static byte[] ReadAll(Stream stream)
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    return copy.ToArray();
}
