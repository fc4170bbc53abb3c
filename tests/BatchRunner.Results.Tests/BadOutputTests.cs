using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>Workloads that write nothing, malformed lines, changing types or huge files: the ledger says so, the table stays queryable.</summary>
public sealed class BadOutputTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task An_index_that_writes_nothing_says_so_and_the_others_rows_are_all_there()
    {
        var store = _temp.Sub("store");
        var job = Wrapper.Job("if [ \"$BATCHRUNNER_INDEX\" != 1 ]; then echo '{\"v\": 1}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; fi", "completions: 3");

        await LocalRuns.RunAsync(store, job);

        using var engine = ResultsQueryEngine.Open(store);
        Assert.Equal(
            [(0L, 1L, null), (1L, 0L, "no output: the workload wrote no files"), (2L, 1L, null)],
            engine.Execute("SELECT \"index\", output_rows, output_note FROM indexes ORDER BY \"index\"").Rows.Select(r => ((long)r[0]!, (long)r[1]!, (string?)r[2])));
        Assert.Equal([0L, 2L], engine.Execute("SELECT \"index\" FROM results ORDER BY ALL").Rows.Select(r => (long)r[0]!));
    }

    [Fact]
    public async Task Malformed_lines_are_counted_and_named_in_the_ledger_and_left_out_rather_than_made_empty_rows()
    {
        var store = _temp.Sub("store");
        var job = Wrapper.Job(
            "o=\"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; echo '{\"v\": 1}' > \"$o\"; if [ \"$BATCHRUNNER_INDEX\" = 1 ]; then printf '{\"v\": 2\\n[1, 2]\\n\\n{\"v\": 3}\\n{\"v\": 4' >> \"$o\"; fi",
            "completions: 2");

        await LocalRuns.RunAsync(store, job);

        using var engine = ResultsQueryEngine.Open(store);
        var row = engine.Execute("SELECT output_rows, output_malformed, output_note FROM indexes WHERE \"index\" = 1").Rows.Single();
        // {"v": 2 (cut short), [1, 2] (not an object) and the unterminated last line; the blank line is no row.
        Assert.Equal((2L, 3L), ((long)row[0]!, (long)row[1]!));
        Assert.StartsWith("3 malformed line(s) left out of results; first: r.jsonl line 2: not valid JSON", (string)row[2]!, StringComparison.Ordinal);
        Assert.Equal([(0L, 1L), (1L, 1L), (1L, 3L)], engine.Execute("SELECT \"index\", v FROM results ORDER BY ALL").Rows.Select(r => ((long)r[0]!, (long)r[1]!)));
        Assert.Equal(0L, engine.Execute("SELECT count(*) FROM results WHERE v IS NULL").Rows[0][0]);
    }

    [Fact]
    public async Task A_column_that_changes_type_between_indexes_stays_queryable_as_text_raw_and_compacted()
    {
        var store = _temp.Sub("store");
        var job = Wrapper.Job(
            "if [ \"$BATCHRUNNER_INDEX\" = 1 ]; then echo '{\"x\": \"seven\", \"y\": 1}'; else echo \"{\\\"x\\\": $BATCHRUNNER_INDEX, \\\"y\\\": 2.5}\"; fi > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"",
            "completions: 3");
        await LocalRuns.RunAsync(store, job);
        const string Query = "SELECT \"index\", x, typeof(x), y, typeof(y) FROM results ORDER BY \"index\"";
        List<string> raw;
        using (var engine = ResultsQueryEngine.Open(store))
        {
            raw = LocalRuns.Answer(engine, Query);
        }

        await LocalRuns.Compactor().CompactAsync(new BatchRunner.Store.LocalResultsStore(store), "job", RunIdentity.For(job), force: false, CancellationToken.None);

        Assert.Equal(
            ["index | x | typeof(x) | y | typeof(y)", "0 | 0 | VARCHAR | 2.5 | DOUBLE", "1 | seven | VARCHAR | 1 | DOUBLE", "2 | 2 | VARCHAR | 2.5 | DOUBLE"],
            raw);
        using var compacted = ResultsQueryEngine.Open(store);
        Assert.Equal(raw, LocalRuns.Answer(compacted, Query));
    }

    [Fact]
    public async Task A_huge_output_is_read_a_line_at_a_time_and_an_overlong_line_is_named_not_parsed()
    {
        // 40 MB of rows plus one 17 MB line, generated from two reused buffers so only the inspector allocates.
        var line = Encoding.UTF8.GetBytes($"{{\"i\": 1, \"pad\": \"{new string('p', 80)}\"}}\n");
        var fill = Enumerable.Repeat((byte)'b', 65_536).ToArray();
        var stream = new ConcatenatedStream(
            Enumerable.Repeat(line, 400_000).Append("{\"big\": \""u8.ToArray()).Concat(Enumerable.Repeat(fill, 260)).Append("\"}\n"u8.ToArray()));
        var before = GC.GetAllocatedBytesForCurrentThread();

        var summary = OutputInspector.Inspect([("huge.jsonl", 57_000_000, () => stream)], ResultsFormat.Jsonl);

        Assert.Equal((400_000L, 1L), (summary.Rows, summary.Malformed));
        Assert.Equal("1 malformed line(s) left out of results; first: huge.jsonl line 400001: is longer than 16,777,216 bytes", summary.Note);
        await Task.CompletedTask;
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64_000_000, "the inspector should hold a line at most, not the output");
    }

    [Fact]
    public void Csv_rows_are_counted_after_the_header_and_other_files_count_only_as_files()
    {
        var summary = OutputInspector.Inspect(
            [("a.csv", 10, () => new MemoryStream("x,y\n1,2\n3,4\n"u8.ToArray())), ("notes.txt", 5, () => throw new InvalidOperationException("not read"))],
            ResultsFormat.Csv);

        Assert.Equal(new OutputSummary(2, 15, 2, 0, null), summary);
    }

    /// <summary>A read-only stream over generated chunks, so a huge output needs no disk and no memory.</summary>
    private sealed class ConcatenatedStream(IEnumerable<byte[]> chunks) : Stream
    {
        private readonly IEnumerator<byte[]> _chunks = chunks.GetEnumerator();
        private byte[] _current = [];
        private int _offset;

        public override int Read(byte[] buffer, int offset, int count)
        {
            while (_offset == _current.Length)
            {
                if (!_chunks.MoveNext())
                {
                    return 0;
                }

                _current = _chunks.Current;
                _offset = 0;
            }

            var n = Math.Min(count, _current.Length - _offset);
            Array.Copy(_current, _offset, buffer, offset, n);
            _offset += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
