using System.Globalization;
using System.Text;
using BatchRunner.Core.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>
/// How an index's parameters reach its pod without the image knowing BatchRunner: the plan (in the Job's pod template
/// when small, else in a ConfigMap; mounted as files either way) holds a compact description of the sweep (grid axes or listed points, repeats, the seed key) and a POSIX sh
/// entrypoint that turns <c>JOB_COMPLETION_INDEX</c> into the <c>BATCHRUNNER_*</c> variables exactly as
/// <see cref="SweepPlan"/> does, then execs the workload. Its size grows with the grid's values, not with the
/// number of indexes, so a 100,000-index grid fits in a ConfigMap. The image needs /bin/sh and sed.
/// </summary>
public static class PodEntrypoint
{
    public const string MountPath = "/etc/batchrunner";
    public const string OutputPath = "/batchrunner/output";
    public const string ScriptKey = "entrypoint.sh";
    public const string PlanKey = "plan.env";
    public const string PointsKey = "points.jsonl";
    public const string SpecKey = "spec.json";

    /// <summary>ConfigMaps hold 1 MiB; leave room for the object's own metadata.</summary>
    public const int MaxPlanBytes = 1_000_000;

    public static string AxisKey(int axis) => string.Create(CultureInfo.InvariantCulture, $"axis-{axis}");

    /// <summary>How an index finds its parameters: none (empty), a grid's axes, or a listed point.</summary>
    public enum Points
    {
        None,
        Grid,
        List,
    }

    /// <summary>
    /// The entrypoint for a sweep with <paramref name="points"/> (arguments are the workload's command and args). It
    /// is in every plan ConfigMap, and in the namespace's shared copy (<see cref="SharedScriptsName"/>), so it is kept
    /// short: only its kind of points, no comments in it (they are here), short names.
    /// </summary>
    public static string Script(Points points) => Scripts[(int)points];

    private static readonly string[] Scripts = [BuildScript(Points.None), BuildScript(Points.Grid), BuildScript(Points.List)];

    /// <summary>The kind of points a job's sweep has, which picks its script.</summary>
    public static Points PointsOf(BatchJob job) =>
        job.Spec.Sweep switch { { Grid.Count: > 0 } => Points.Grid, { List.Count: > 0 } => Points.List, _ => Points.None };

    /// <summary>
    /// The ConfigMap that holds the scripts once per namespace for the Jobs whose plan travels with them, so that
    /// neither those Jobs nor their pods carry the same kilobyte of script each, as kube-root-ca.crt is kept once per
    /// namespace rather than in every pod. Named after its content: a controller with other scripts makes its own
    /// beside it, and what a running pod mounts never changes under it.
    /// </summary>
    public static string SharedScriptsName { get; } = SharedScriptsPrefix + Convert.ToHexStringLower(
        System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', Scripts))))[..10];

    private const string SharedScriptsPrefix = "batchrunner-entrypoint-";

    /// <summary>Whether <paramref name="configMap"/> is the shared scripts of another controller version (another content).</summary>
    public static bool IsOtherVersionsScripts(string configMap) =>
        configMap.StartsWith(SharedScriptsPrefix, StringComparison.Ordinal) && configMap != SharedScriptsName;

    /// <summary>The shared ConfigMap's key for the script of <paramref name="points"/>.</summary>
    public static string SharedScriptKey(Points points) => points.ToString().ToLowerInvariant() + ".sh";

    /// <summary>The shared ConfigMap's data: every script by <see cref="SharedScriptKey"/>.</summary>
    public static Dictionary<string, string> SharedScripts() =>
        Enum.GetValues<Points>().ToDictionary(SharedScriptKey, Script, StringComparer.Ordinal);

    /// <summary>The plan files of a job, keyed by ConfigMap key (the script and the dispatched spec included).</summary>
    public static Dictionary<string, string> PlanFiles(BatchJob job)
    {
        var sweep = job.Spec.Sweep;
        var (keyLow, keyHigh) = SweepPlan.SeedKey(sweep?.Seed ?? 0);
        var points = PointsOf(job);
        var files = new Dictionary<string, string>(StringComparer.Ordinal) { [ScriptKey] = Script(points), [SpecKey] = RunIdentity.SpecJson(job) };
        var env = new StringBuilder();
        void Set(string name, object value) => env.Append(CultureInfo.InvariantCulture, $"{name}={value}\n");

        Set("BR_COMPLETIONS", job.Spec.Completions);
        Set("BR_REPEATS", sweep?.Repeats ?? 1);
        Set("BR_KEY_LOW", keyLow);
        Set("BR_KEY_HIGH", keyHigh);
        if (points == Points.Grid)
        {
            var grid = sweep!.Grid;
            Set("BR_AXES", grid.Count);
            var stride = 1;
            for (var axis = grid.Count - 1; axis >= 0; axis--)
            {
                var values = grid[axis].Values;
                Set($"BR_STRIDE_{axis}", stride);
                Set($"BR_COUNT_{axis}", values.Count);
                stride *= values.Count;
                var name = JsonStrings.Quote(grid[axis].Name);
                files[AxisKey(axis)] = string.Concat(values.Select(v => $"{name}:{v.Json}\n"));
            }
        }
        else if (points == Points.List)
        {
            files[PointsKey] = string.Concat(sweep!.List.Select(point =>
                "{" + string.Join(",", point.Select(p => $"{JsonStrings.Quote(p.Name)}:{p.Value.Json}")) + "}\n"));
        }

        // The run's names, exported to the workload by the script: in the plan rather than in the container's
        // environment, so the pod template (copied into every pod) carries a few bytes rather than four variables.
        env.Append(CultureInfo.InvariantCulture,
            $"export {WorkloadEnvironment.Job}={ShellQuote(job.Metadata.Name)} {WorkloadEnvironment.RunId}={ShellQuote(RunIdentity.For(job))} {WorkloadEnvironment.Backend}={Backend.Kubernetes.Name}\n");
        files[PlanKey] = env.ToString();
        return files;
    }

    /// <summary>A word sh reads back literally, whatever it holds.</summary>
    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// A plan up to this size travels in its Job's pod template (the script apart, which the namespace shares): one
    /// object fewer to create (and one call) per BatchJob, at the price of every pod carrying it. Larger plans (long lists of points) go in a ConfigMap the pods
    /// share. Far below the 256 KiB the API server allows a pod's annotations.
    /// </summary>
    public const int MaxInlinePlanBytes = 16 * 1024;

    /// <summary>Whether the plan travels with its Job (in its pod template) rather than in a ConfigMap.</summary>
    public static bool TravelsWithJob(Dictionary<string, string> files) => SizeOf(files) <= MaxInlinePlanBytes;

    public static int SizeOf(Dictionary<string, string> files) => files.Sum(f => Encoding.UTF8.GetByteCount(f.Key) + Encoding.UTF8.GetByteCount(f.Value));

    /// <summary>
    /// In order: the plan's directory (p) and its variables; this completion's index (i), which in a rerun's Job is the
    /// i-th of <c>BATCHRUNNER_INDEXES</c> (ranges such as 3,7-9: l is what is left to skip, r the ranges not read yet,
    /// f-t the range at hand); the seed (x, m), SweepPlan's hash of the index with the sweep's key; the parameters (v):
    /// one line of each axis (a, with its stride d and count n) or of the points file, at the index's point
    /// (i / BR_REPEATS).
    /// </summary>
    private static string BuildScript(Points points)
    {
        var mask = 0x7FFF_FFFFu;
        // The multipliers are reduced mod 2^31 first so every product fits the shell's signed 64-bit arithmetic.
        var m1 = SweepPlan.SeedMultiplier1 & mask;
        var m2 = SweepPlan.SeedMultiplier2 & mask;
        var parameters = points switch
        {
            Points.Grid => $$"""
                v= a=0
                while [ $a -lt $BR_AXES ]; do
                eval "d=\$BR_STRIDE_$a n=\$BR_COUNT_$a"
                v="${v:+$v,}$(sed -n "$((i/BR_REPEATS/d%n+1))p" "$p/axis-$a")"
                a=$((a+1))
                done
                v="{$v}"
                """,
            Points.List => $$"""v=$(sed -n "$((i/BR_REPEATS+1))p" "$p/{{PointsKey}}")""",
            _ => "v={}",
        };
        return $$"""
            #!/bin/sh
            set -eu
            p=${BATCHRUNNER_PLAN_DIR:-{{MountPath}}}
            [ -n "${JOB_COMPLETION_INDEX:-}" ] || { echo "batchrunner: JOB_COMPLETION_INDEX is not set: this cluster does not run Indexed Jobs (Kubernetes 1.21 or later)" >&2; exit 70; }
            . "$p/{{PlanKey}}"
            i=$JOB_COMPLETION_INDEX
            if [ -n "${BATCHRUNNER_INDEXES:-}" ]; then
            l=$i r="$BATCHRUNNER_INDEXES," i=
            while [ -n "$r" ]; do
            f=${r%%,*} r=${r#*,}
            t=${f#*-} f=${f%-*}
            if [ $l -le $((t-f)) ]; then i=$((f+l)); break; fi
            l=$((l-(t-f+1)))
            done
            [ -n "$i" ] || { echo "batchrunner: completion index $JOB_COMPLETION_INDEX is beyond BATCHRUNNER_INDEXES ($BATCHRUNNER_INDEXES)" >&2; exit 70; }
            fi
            m={{mask}}
            x=$(((i+BR_KEY_LOW)&m)) && x=$((x^(x>>16))) && x=$(((x*{{m1}})&m)) && x=$((x^(x>>15))) && x=$(((x*{{m2}})&m)) && x=$((x^(x>>16)))
            {{parameters}}
            export BATCHRUNNER_INDEX=$i BATCHRUNNER_PARAMS="$v" BATCHRUNNER_SEED=$(((x^BR_KEY_HIGH)&m)) BATCHRUNNER_REPEAT=$((i%BR_REPEATS)) BATCHRUNNER_OUTPUT_DIR="${BATCHRUNNER_OUTPUT_DIR:-{{OutputPath}}}"
            mkdir -p "$BATCHRUNNER_OUTPUT_DIR"
            exec "$@"

            """.Replace("\r\n", "\n", StringComparison.Ordinal);
    }
}
