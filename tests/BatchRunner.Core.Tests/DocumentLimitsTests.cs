using System.Diagnostics;
using System.Text;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

/// <summary>What the parser refuses before binding any field: oversize, non-text and exploding documents.</summary>
public class DocumentLimitsTests
{
    /// <summary>A valid document padded with a comment to exactly <paramref name="bytes"/> bytes.</summary>
    private static byte[] ValidDocumentOfSize(int bytes)
    {
        var head = Specs.Yaml() + "#";
        var text = head + new string('x', bytes - head.Length - 1) + "\n";
        var utf8 = Encoding.UTF8.GetBytes(text);
        Assert.Equal(bytes, utf8.Length);
        return utf8;
    }

    [Fact]
    public void A_document_of_exactly_the_size_limit_is_accepted()
    {
        Assert.True(BatchJobParser.Parse(ValidDocumentOfSize(SpecLimits.MaxDocumentBytes)).IsValid);
    }

    [Fact]
    public void A_document_one_byte_over_the_size_limit_is_rejected()
    {
        var bytes = ValidDocumentOfSize(SpecLimits.MaxDocumentBytes + 1);

        Assert.Equal(["document is 1,048,577 bytes, more than the limit of 1,048,576"], Specs.Errors(BatchJobParser.Parse(bytes)));
        Assert.Equal(["document is more than the limit of 1,048,576 bytes"], Specs.Errors(Encoding.UTF8.GetString(bytes)));
    }

    [Fact]
    public void Invalid_utf8_bytes_are_rejected()
    {
        var bytes = Encoding.UTF8.GetBytes(Specs.Yaml("  args: [\"caf?\"]\n"));
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xE9; // Latin-1 é, not UTF-8

        Assert.Equal(["document is not valid UTF-8 text"], Specs.Errors(BatchJobParser.Parse(bytes)));
    }

    [Fact]
    public void Nul_bytes_are_rejected()
    {
        var text = Specs.Yaml("  args: [\"a\0b\"]\n");

        Assert.Equal(["document contains NUL bytes; it is not text"], Specs.Errors(text));
        Assert.Equal(["document contains NUL bytes; it is not text"], Specs.Errors(BatchJobParser.Parse(Encoding.UTF8.GetBytes(text))));
    }

    [Fact]
    public void A_billion_laughs_anchor_bomb_is_rejected_quickly_without_exhausting_memory()
    {
        // Ten levels of ten aliases each: 10^10 nodes once expanded, from under 1 KiB of text.
        var bomb = new StringBuilder(Specs.Yaml("  args: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"));
        for (var level = 1; level <= 9; level++)
        {
            bomb.Append($"  l{level}: &l{level} [").AppendJoin(", ", Enumerable.Repeat($"*l{level - 1}", 10)).Append("]\n");
        }

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var stopwatch = Stopwatch.StartNew();
        var errors = Specs.Errors(bomb.ToString());
        stopwatch.Stop();

        var error = Assert.Single(errors);
        Assert.StartsWith("not valid YAML or JSON at line ", error);
        Assert.EndsWith("document expands to more than 500,000 nodes (through anchors and aliases?)", error);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"took {stopwatch.Elapsed}");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.True(allocated < 256L << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Nesting_far_deeper_than_the_limit_is_rejected_without_overflowing_the_stack()
    {
        // Half a million levels fit in the size limit; loading them recursively would kill the process.
        var depth = SpecLimits.MaxDocumentBytes / 2 - 1000;
        var text = Specs.Yaml("  args: " + new string('[', depth) + new string(']', depth) + "\n");

        // The root and spec mappings are the first two levels, so the 63rd '[' (column 9 + 62) is one too many.
        Assert.Equal(["not valid YAML or JSON at line 7, column 71: document nests deeper than 64 levels"], Specs.Errors(text));
    }

    [Theory]
    [InlineData(YamlTree.MaxDepth - 2, true)]
    [InlineData(YamlTree.MaxDepth - 1, false)]
    public void Nesting_up_to_the_limit_is_accepted(int lists, bool accepted)
    {
        // Server metadata is ignored whatever its shape; the root and metadata mappings are two levels.
        var text = Specs.Yaml().Replace(
            "  name: sweep\n", $"  name: sweep\n  finalizers: {new string('[', lists)}{new string(']', lists)}\n", StringComparison.Ordinal);

        Assert.Equal(accepted, BatchJobParser.Parse(text).IsValid);
    }

    [Fact]
    public void Aliases_that_expand_deeper_than_the_limit_are_rejected()
    {
        // Each anchor wraps the one before in a list: two levels as written, MaxDepth + 6 once expanded.
        var chain = new StringBuilder("d0: &d0 [x]\n");
        for (var level = 1; level <= YamlTree.MaxDepth + 5; level++)
        {
            chain.Append($"d{level}: &d{level} [*d{level - 1}]\n");
        }

        var error = Assert.Single(Specs.Errors(chain.ToString()));
        Assert.StartsWith("not valid YAML or JSON at line ", error);
        Assert.EndsWith("document nests deeper than 64 levels (through anchors and aliases?)", error);
    }
}
