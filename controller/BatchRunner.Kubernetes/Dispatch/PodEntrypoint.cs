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

    /// <summary>The entrypoint: arguments are the workload's command and args.</summary>
    public static string Script { get; } = BuildScript();

    /// <summary>The plan files of a job, keyed by ConfigMap key (the script and the dispatched spec included).</summary>
    public static Dictionary<string, string> PlanFiles(BatchJob job)
    {
        var sweep = job.Spec.Sweep;
        var (keyLow, keyHigh) = SweepPlan.SeedKey(sweep?.Seed ?? 0);
        var files = new Dictionary<string, string>(StringComparer.Ordinal) { [ScriptKey] = Script, [SpecKey] = RunIdentity.SpecJson(job) };
        var env = new StringBuilder();
        void Set(string name, object value) => env.Append(CultureInfo.InvariantCulture, $"{name}={value}\n");

        Set("BR_COMPLETIONS", job.Spec.Completions);
        Set("BR_REPEATS", sweep?.Repeats ?? 1);
        Set("BR_KEY_LOW", keyLow);
        Set("BR_KEY_HIGH", keyHigh);
        if (sweep is { Grid.Count: > 0 })
        {
            Set("BR_MODE", "grid");
            Set("BR_AXES", sweep.Grid.Count);
            var stride = 1;
            for (var axis = sweep.Grid.Count - 1; axis >= 0; axis--)
            {
                var values = sweep.Grid[axis].Values;
                Set($"BR_STRIDE_{axis}", stride);
                Set($"BR_COUNT_{axis}", values.Count);
                stride *= values.Count;
                var name = JsonStrings.Quote(sweep.Grid[axis].Name);
                files[AxisKey(axis)] = string.Concat(values.Select(v => $"{name}:{v.Json}\n"));
            }
        }
        else if (sweep is { List.Count: > 0 })
        {
            Set("BR_MODE", "list");
            files[PointsKey] = string.Concat(sweep.List.Select(point =>
                "{" + string.Join(",", point.Select(p => $"{JsonStrings.Quote(p.Name)}:{p.Value.Json}")) + "}\n"));
        }
        else
        {
            Set("BR_MODE", "none");
        }

        files[PlanKey] = env.ToString();
        return files;
    }

    /// <summary>
    /// A plan up to this size travels in its Job's pod template: one object fewer to create (and one call) per
    /// BatchJob, at the price of every pod carrying it. Larger plans (long lists of points) go in a ConfigMap the pods
    /// share. Far below the 256 KiB the API server allows a pod's annotations.
    /// </summary>
    public const int MaxInlinePlanBytes = 16 * 1024;

    /// <summary>Whether the plan travels with its Job (in its pod template) rather than in a ConfigMap.</summary>
    public static bool TravelsWithJob(Dictionary<string, string> files) => SizeOf(files) <= MaxInlinePlanBytes;

    public static int SizeOf(Dictionary<string, string> files) => files.Sum(f => Encoding.UTF8.GetByteCount(f.Key) + Encoding.UTF8.GetByteCount(f.Value));

    private static string BuildScript()
    {
        var mask = 0x7FFF_FFFFu;
        // The multipliers are reduced mod 2^31 first so every product fits the shell's signed 64-bit arithmetic.
        var m1 = SweepPlan.SeedMultiplier1 & mask;
        var m2 = SweepPlan.SeedMultiplier2 & mask;
        return $$"""
            #!/bin/sh
            # BatchRunner pod entrypoint: derives this index's BATCHRUNNER_* variables from the plan beside it,
            # exactly as SweepPlan does in BatchRunner.Core, then runs the workload given as arguments.
            set -eu
            plan="${BATCHRUNNER_PLAN_DIR:-{{MountPath}}}"
            if [ -z "${JOB_COMPLETION_INDEX:-}" ]; then
              echo "batchrunner: JOB_COMPLETION_INDEX is not set: this cluster does not run Indexed Jobs (Kubernetes 1.21 or later)" >&2
              exit 70
            fi
            . "$plan/{{PlanKey}}"
            i=$JOB_COMPLETION_INDEX
            if [ -n "${BATCHRUNNER_INDEXES:-}" ]; then
              # A rerun's Job: completion i runs the i-th of the chosen indexes (ranges such as 3,7-9).
              left=$i rest="$BATCHRUNNER_INDEXES," i=""
              while [ -n "$rest" ]; do
                part=${rest%%,*} rest=${rest#*,}
                first=${part%-*} last=${part#*-}
                if [ "$left" -le $(( last - first )) ]; then i=$(( first + left )); break; fi
                left=$(( left - (last - first + 1) ))
              done
              if [ -z "$i" ]; then
                echo "batchrunner: completion index $JOB_COMPLETION_INDEX is beyond BATCHRUNNER_INDEXES ($BATCHRUNNER_INDEXES)" >&2
                exit 70
              fi
            fi
            point=$(( i / BR_REPEATS ))
            repeat=$(( i % BR_REPEATS ))
            m={{mask}}
            x=$(( (i + BR_KEY_LOW) & m ))
            x=$(( x ^ (x >> 16) ))
            x=$(( (x * {{m1}}) & m ))
            x=$(( x ^ (x >> 15) ))
            x=$(( (x * {{m2}}) & m ))
            x=$(( x ^ (x >> 16) ))
            seed=$(( (x ^ BR_KEY_HIGH) & m ))
            case "$BR_MODE" in
              grid)
                params=""
                axis=0
                while [ "$axis" -lt "$BR_AXES" ]; do
                  eval "stride=\$BR_STRIDE_$axis count=\$BR_COUNT_$axis"
                  fragment=$(sed -n "$(( point / stride % count + 1 ))p" "$plan/axis-$axis")
                  params="${params:+$params,}$fragment"
                  axis=$(( axis + 1 ))
                done
                params="{$params}"
                ;;
              list) params=$(sed -n "$(( point + 1 ))p" "$plan/{{PointsKey}}") ;;
              *) params="{}" ;;
            esac
            export BATCHRUNNER_INDEX="$i" BATCHRUNNER_PARAMS="$params" BATCHRUNNER_SEED="$seed" BATCHRUNNER_REPEAT="$repeat"
            export BATCHRUNNER_OUTPUT_DIR="${BATCHRUNNER_OUTPUT_DIR:-{{OutputPath}}}"
            mkdir -p "$BATCHRUNNER_OUTPUT_DIR"
            exec "$@"

            """.Replace("\r\n", "\n", StringComparison.Ordinal);
    }
}
