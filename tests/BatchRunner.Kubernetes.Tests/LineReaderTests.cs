using System.Text;
using BatchRunner.Kubernetes.Client;
using CsCheck;

namespace BatchRunner.Kubernetes.Tests;

public sealed class LineReaderTests
{
    [Fact]
    public void Lines_come_back_whole_however_the_stream_cuts_them()
    {
        // Any lines (none holding a newline), with or without a newline after the last, read in chunks of any size.
        var anyLine = Gen.String[Gen.Char.Where(c => c != '\n'), 0, 300];
        Gen.Select(anyLine.Array[0, 40], Gen.Bool, Gen.Int[1, 97]).Sample((lines, lastEnds, chunk) =>
        {
            var text = string.Join('\n', lines) + (lastEnds && lines.Length > 0 ? "\n" : "");
            using var reader = new LineReader(new ChunkedStream(Encoding.UTF8.GetBytes(text), chunk), maxLineBytes: 4096);

            var read = ReadAll(reader);

            // The text's lines: what lies between newlines, a newline at the very end closing the last one (so an
            // empty last line without one cannot be told from none, and an empty stream has no lines).
            var expected = text.Length == 0 ? [] : (text.EndsWith('\n') ? text[..^1] : text).Split('\n');
            Assert.Equal(expected, read);
        });
    }

    [Fact]
    public void A_line_longer_than_the_limit_is_refused_naming_the_limit()
    {
        using var reader = new LineReader(new ChunkedStream(Encoding.UTF8.GetBytes(new string('x', 5000) + "\nnext\n"), 512), maxLineBytes: 4096);

        var thrown = Assert.Throws<InvalidDataException>(() => ReadAll(reader));

        Assert.Contains("4096 bytes", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_line_at_the_limit_is_read()
    {
        var longest = new string('x', 4096);
        using var reader = new LineReader(new ChunkedStream(Encoding.UTF8.GetBytes(longest + "\nnext"), 1000), maxLineBytes: 4096);

        Assert.Equal([longest, "next"], ReadAll(reader));
    }

    [Fact]
    public void An_empty_stream_has_no_lines()
    {
        using var reader = new LineReader(new MemoryStream(), maxLineBytes: 16);

        Assert.Empty(ReadAll(reader));
    }

    private static List<string> ReadAll(LineReader reader)
    {
        var lines = new List<string>();
        while (reader.ReadLineAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is { } line)
        {
            lines.Add(Encoding.UTF8.GetString(line.Span));
        }

        return lines;
    }

    /// <summary>Gives at most <paramref name="chunk"/> bytes a read, as a network stream gives what has arrived.</summary>
    private sealed class ChunkedStream(byte[] content, int chunk) : MemoryStream(content)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, chunk));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, chunk)]);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);
    }
}
