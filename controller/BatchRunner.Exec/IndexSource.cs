using System.Globalization;
using BatchRunner.Core.Runs;

namespace BatchRunner.Exec;

/// <summary>
/// Which index this process runs, from whichever backend started it: <c>BATCHRUNNER_INDEX</c> (set by hand or by
/// the local backend), <c>JOB_COMPLETION_INDEX</c> (a Kubernetes Indexed Job), or <c>AWS_BATCH_JOB_ARRAY_INDEX</c>
/// plus <c>BATCHRUNNER_INDEX_OFFSET</c> (an AWS Batch array job, whose arrays hold at most 10,000 children; a
/// single job has no array index, so its offset alone is the index). A rerun's Job or array runs chosen indexes:
/// <c>BATCHRUNNER_INDEXES</c> lists them (<c>3,7-9</c>) and the completion or array index says which of them.
/// </summary>
public static class IndexSource
{
    /// <exception cref="FormatException">No variable names an index, or one is not a number in range.</exception>
    public static int Resolve(Func<string, string?> environment, int count)
    {
        int index;
        if (environment("BATCHRUNNER_INDEXES") is { Length: > 0 } listed && environment("BATCHRUNNER_INDEX") is not { Length: > 0 })
        {
            var chosen = IndexRanges.ParseWithin(listed, count, out var error)
                ?? throw new FormatException($"BATCHRUNNER_INDEXES: {error}");
            var position = environment("JOB_COMPLETION_INDEX") is { Length: > 0 } completion ? Number("JOB_COMPLETION_INDEX", completion)
                : environment("AWS_BATCH_JOB_ARRAY_INDEX") is { Length: > 0 } child ? Number("AWS_BATCH_JOB_ARRAY_INDEX", child)
                : 0;
            return position < chosen.Count
                ? chosen[position]
                : throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"index {position} of BATCHRUNNER_INDEXES is out of range: it lists {chosen.Count} indexes"));
        }

        if (environment("BATCHRUNNER_INDEX") is { Length: > 0 } explicitIndex)
        {
            index = Number("BATCHRUNNER_INDEX", explicitIndex);
        }
        else if (environment("JOB_COMPLETION_INDEX") is { Length: > 0 } completion)
        {
            index = Number("JOB_COMPLETION_INDEX", completion);
        }
        else if (environment("AWS_BATCH_JOB_ARRAY_INDEX") is { Length: > 0 } || environment("BATCHRUNNER_INDEX_OFFSET") is { Length: > 0 })
        {
            var arrayIndex = environment("AWS_BATCH_JOB_ARRAY_INDEX") is { Length: > 0 } a ? Number("AWS_BATCH_JOB_ARRAY_INDEX", a) : 0;
            var offset = environment("BATCHRUNNER_INDEX_OFFSET") is { Length: > 0 } o ? Number("BATCHRUNNER_INDEX_OFFSET", o) : 0;
            index = checked(arrayIndex + offset);
        }
        else if (count == 1)
        {
            // A run of one index needs no number: a Job on a cluster without Indexed Jobs (before 1.21) runs it too.
            index = 0;
        }
        else
        {
            throw new FormatException("no index: set BATCHRUNNER_INDEX, JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX / BATCHRUNNER_INDEX_OFFSET (AWS Batch)");
        }

        if (index >= count)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"index {index} is out of range: the job has {count} indexes (0 to {count - 1})"));
        }

        return index;
    }

    /// <summary>
    /// The attempt number AWS Batch gives (<c>AWS_BATCH_JOB_ATTEMPT</c>, from 1), if present; null for a rerun's array,
    /// whose attempts are numbered after those the store holds (<c>BATCHRUNNER_ATTEMPT_NUMBERING=store</c>).
    /// </summary>
    public static int? BatchAttempt(Func<string, string?> environment) =>
        environment(WorkloadEnvironment.AttemptNumbering) == "store" ? null
        : environment("AWS_BATCH_JOB_ATTEMPT") is { Length: > 0 } text ? Number("AWS_BATCH_JOB_ATTEMPT", text) is var a and > 0 ? a
            : throw new FormatException($"AWS_BATCH_JOB_ATTEMPT: expected a number from 1, got \"{text}\"") : null;

    private static int Number(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"{name}: expected a whole number from 0, got \"{text}\"");
}
