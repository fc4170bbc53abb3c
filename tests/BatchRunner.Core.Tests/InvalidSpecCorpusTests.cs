using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

/// <summary>
/// Every document in <c>Corpus/invalid</c> is rejected with exactly the errors, in order, listed in the
/// <c>.errors</c> file beside it (one <see cref="SpecError.ToString"/> per line).
/// </summary>
public class InvalidSpecCorpusTests
{
    private const string Folder = "invalid";

    public static TheoryData<string> Documents => new(
        Directory.EnumerateFiles(Specs.CorpusPath(Folder))
            .Where(path => Path.GetExtension(path) is ".yaml" or ".json")
            .Select(Path.GetFileName)
            .Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Documents))]
    public void Invalid_document_is_rejected_with_exactly_the_expected_errors(string file)
    {
        var path = Specs.CorpusPath(Path.Combine(Folder, file));
        var expected = File.ReadAllLines(Path.ChangeExtension(path, ".errors")).Where(line => line.Length > 0).ToArray();

        var actual = Specs.Errors(BatchJobParser.Parse(File.ReadAllBytes(path)));

        Assert.NotEmpty(expected);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Corpus_pairs_every_document_with_an_errors_file_and_has_at_least_thirty_cases()
    {
        var files = Directory.GetFiles(Specs.CorpusPath(Folder)).Select(Path.GetFileName).ToArray();
        var documents = files.Where(f => Path.GetExtension(f) is ".yaml" or ".json").Select(Path.GetFileNameWithoutExtension).ToList();
        var expectations = files.Where(f => Path.GetExtension(f) == ".errors").Select(Path.GetFileNameWithoutExtension);

        Assert.Equal(documents.Order(StringComparer.Ordinal), expectations.Order(StringComparer.Ordinal));
        Assert.True(documents.Count >= 30, $"only {documents.Count} invalid documents");
    }
}
