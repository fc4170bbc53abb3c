using BatchRunner.Core.Spec;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// A BatchJob name given on the command line, checked before it becomes part of a store path or a query: a name that
/// could not be a BatchJob's (say, <c>../x</c>) is refused, so no command reads or deletes outside the store's runs.
/// </summary>
internal static class BatchJobName
{
    /// <returns>True when it may be a BatchJob's name; otherwise says so on <paramref name="stderr"/>.</returns>
    public static async Task<bool> CheckAsync(string command, string name, TextWriter stderr)
    {
        if (BatchJobParser.IsBatchJobName(name))
        {
            return true;
        }

        await stderr.WriteLineAsync($"{command}: \"{Core.Runs.TerminalText.Safe(name)}\" is not a BatchJob name (lowercase letters, digits and '-', at most {SpecLimits.MaxNameLength} characters)").ConfigureAwait(false);
        return false;
    }
}
