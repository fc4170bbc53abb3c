using System.Globalization;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Results.Tests.Support;

/// <summary>Runs jobs with the local executor into a store, and compares query answers.</summary>
public static class LocalRuns
{
    public static Task<RunReport> RunAsync(string store, BatchJob job) =>
        new LocalExecutor(new LocalRunOptions { StoreRoot = store, WorkingDirectory = store }, TimeProvider.System, NullLogger<LocalExecutor>.Instance)
            .RunAsync(job, null, CancellationToken.None);

    public static ResultsCompactor Compactor() => new(NullLogger<ResultsCompactor>.Instance, TimeProvider.System);

    /// <summary>A query's answer as text, column names and types first, so two answers compare exactly.</summary>
    public static List<string> Answer(ResultsQueryEngine engine, string sql)
    {
        var result = engine.Execute(sql);
        return [string.Join(" | ", result.Columns), .. result.Rows.Select(row => string.Join(" | ", row.Select(Text)))];
    }

    private static string Text(object? value) => value switch
    {
        null => "NULL",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IDictionary map => "{" + string.Join(", ", map.Keys.Cast<object>().Select(k => $"{k}: {Text(map[k])}")) + "}",
        System.Collections.IEnumerable list and not string => "[" + string.Join(", ", list.Cast<object?>().Select(Text)) + "]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
