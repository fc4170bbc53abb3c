using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Core.Runs;

/// <summary>
/// The environment contract every backend gives an index, identically: the workload needs nothing of
/// BatchRunner but these variables.
/// </summary>
public static class WorkloadEnvironment
{
    public const string Index = "BATCHRUNNER_INDEX";
    public const string Params = "BATCHRUNNER_PARAMS";
    public const string Seed = "BATCHRUNNER_SEED";
    public const string OutputDir = "BATCHRUNNER_OUTPUT_DIR";
    public const string Job = "BATCHRUNNER_JOB";
    public const string RunId = "BATCHRUNNER_RUN_ID";

    /// <summary>Which repeat of its sweep point an index is (0-based); an addition to the six above.</summary>
    public const string Repeat = "BATCHRUNNER_REPEAT";

    /// <summary>
    /// Set on a rerun's Job or array (not seen by the workload as such): the indexes it runs, in range notation;
    /// completion or child <c>i</c> runs the <c>i</c>-th.
    /// </summary>
    /// <summary>
    /// The backend running the attempt, for its ledger row: a run split by its queue's overflow runs on two, while
    /// the spec names one.
    /// </summary>
    public const string Backend = "BATCHRUNNER_BACKEND";

    public const string RerunIndexes = "BATCHRUNNER_INDEXES";

    /// <summary>
    /// <c>store</c> on a rerun's attempts: numbered after those the store holds (AWS Batch would count from 1 again), and
    /// run on purpose, never taken from an earlier point. A part of a split run lists its indexes too, and is no rerun.
    /// </summary>
    public const string AttemptNumbering = "BATCHRUNNER_ATTEMPT_NUMBERING";

    /// <summary>The spec's own variables first, then the contract's, which the spec cannot override.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> For(BatchJob job, string runId, IndexAssignment assignment, string outputDir)
    {
        var variables = new List<KeyValuePair<string, string>>(job.Spec.Env.Count + 7);
        variables.AddRange(job.Spec.Env.Select(e => KeyValuePair.Create(e.Name, e.Value)));
        variables.Add(KeyValuePair.Create(Index, assignment.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        variables.Add(KeyValuePair.Create(Params, assignment.ParamsJson));
        variables.Add(KeyValuePair.Create(Seed, assignment.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        variables.Add(KeyValuePair.Create(OutputDir, outputDir));
        variables.Add(KeyValuePair.Create(Job, job.Metadata.Name));
        variables.Add(KeyValuePair.Create(RunId, runId));
        variables.Add(KeyValuePair.Create(Repeat, assignment.Repeat.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return variables;
    }
}
