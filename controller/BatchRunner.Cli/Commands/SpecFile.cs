using BatchRunner.Core.Spec;

namespace BatchRunner.Cli.Commands;

/// <summary>Reads a spec file (or standard input for <c>-</c>) and reports every error in it, prefixed by the file.</summary>
internal static class SpecFile
{
    public static async Task<BatchJob?> LoadAsync(string path, TextWriter stderr, CancellationToken cancellation)
    {
        byte[] bytes;
        try
        {
            bytes = path == "-" ? await ReadStandardInputAsync(cancellation).ConfigureAwait(false) : await File.ReadAllBytesAsync(path, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"{path}: cannot read: {e.Message}").ConfigureAwait(false);
            return null;
        }

        var result = BatchJobParser.Parse(bytes);
        if (result.IsValid)
        {
            return result.Job;
        }

        await ReportAsync(path, result.Errors, stderr).ConfigureAwait(false);
        return null;
    }

    public static async Task ReportAsync(string path, IReadOnlyList<SpecError> errors, TextWriter stderr)
    {
        foreach (var error in errors)
        {
            await stderr.WriteLineAsync($"{path}: {error}").ConfigureAwait(false);
        }

        await stderr.WriteLineAsync($"{path}: {errors.Count} error{(errors.Count == 1 ? "" : "s")}; nothing was run").ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadStandardInputAsync(CancellationToken cancellation)
    {
        using var buffer = new MemoryStream();
        await using var input = Console.OpenStandardInput();
        await input.CopyToAsync(buffer, cancellation).ConfigureAwait(false);
        return buffer.ToArray();
    }
}
