using System.Text.Json.Serialization;

namespace BatchRunner.Core.Spec;

/// <summary>
/// One BatchJob document (<c>batchrunner.io/v1alpha1</c>), the same for every door: a file given to the CLI,
/// a custom resource applied with kubectl, an SQS message body. Values are resolved: defaults filled in,
/// <see cref="BatchJobSpec.Completions"/> derived from the sweep.
/// </summary>
public sealed record BatchJob(ObjectMeta Metadata, BatchJobSpec Spec)
{
    public const string Group = "batchrunner.io";
    public const string Version = "v1alpha1";
    public const string ApiVersion = Group + "/" + Version;
    public const string KindName = "BatchJob";
}

/// <summary>The part of Kubernetes object metadata a BatchJob uses.</summary>
public sealed record ObjectMeta(
    string Name,
    string Namespace,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations)
{
    public const string DefaultNamespace = "default";
}

/// <summary>How the workload writes result rows into its output directory.</summary>
public enum ResultsFormat
{
    /// <summary>JSON lines in <c>*.jsonl</c> files.</summary>
    Jsonl,

    /// <summary>CSV with a header row in <c>*.csv</c> files.</summary>
    Csv,
}

public sealed record BatchJobSpec
{
    public string? Image { get; init; }
    public IReadOnlyList<string> Command { get; init; } = [];
    public IReadOnlyList<string> Args { get; init; } = [];
    public IReadOnlyList<EnvVar> Env { get; init; } = [];
    public ResourceRequests Resources { get; init; } = ResourceRequests.Default;

    /// <summary>Number of indexes; the sweep size when a sweep is given.</summary>
    public int Completions { get; init; } = 1;

    /// <summary>Indexes running at once, at most. Defaults to 1, as a Kubernetes Job does.</summary>
    public int Parallelism { get; init; } = 1;

    public SweepSpec? Sweep { get; init; }
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>Limit on one attempt of one index.</summary>
    public double? TimeoutSeconds { get; init; }

    /// <summary>Limit on the whole job (each invocation of a run).</summary>
    public double? DeadlineSeconds { get; init; }

    public Backend Backend { get; init; } = Backend.Local;

    /// <summary>The queue it waits in for its share of a backend; null for the default queue. Left out of JSON when null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Queue { get; init; }

    /// <summary>Its rank among its tenant's BatchJobs in the queue: higher goes first. Left out of JSON when 0.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Priority { get; init; }

    /// <summary>
    /// A named priority (<c>spec.priority: high</c>), looked up in its queue's priority classes when it is scheduled
    /// (a name the queue lacks holds the BatchJob back, saying so); null when the priority is a number.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PriorityClass { get; init; }

    /// <summary>
    /// Whether an index takes the result of an earlier identical point (same <see cref="Runs.PointKey"/>, same namespace)
    /// instead of running. Left out of JSON when true (the default), so existing documents stay byte-identical.
    /// </summary>
    /// <remarks>Null for the default (true), so documents that do not turn it off are written as before.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Reuse { get; init; }

    /// <summary>
    /// The most the run may cost in US dollars (<c>spec.budget.usd</c>): no new index starts once the projected cost
    /// would pass it (<see cref="Costs.BudgetGuard"/>); null: no budget. An execution setting, outside the run id (left
    /// out of the canonical spec when none, so the run ids of earlier versions stand).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Budget { get; init; }

    [JsonIgnore]
    public bool ReusesResults => Reuse != false;

    public ResultsSpec Results { get; init; } = ResultsSpec.Default;
}

public sealed record EnvVar(string Name, string Value);

/// <summary>Requested resources, kept both as written (for manifests) and parsed (for arithmetic).</summary>
public sealed record ResourceRequests(string Cpu, string Memory, long MilliCpu, long MemoryBytes)
{
    public static readonly ResourceRequests Default = new("1", "2Gi", 1000, 2L << 30);
}

/// <summary>
/// The parameter sweep: a grid (cartesian product, first key outermost) or an explicit list of points,
/// each point repeated <see cref="Repeats"/> times with distinct seeds.
/// </summary>
public sealed record SweepSpec(
    IReadOnlyList<GridAxis> Grid,
    IReadOnlyList<IReadOnlyList<Parameter>> List,
    int Repeats,
    long Seed);

/// <summary>One named grid dimension and its values, in document order.</summary>
public sealed record GridAxis(string Name, IReadOnlyList<ParameterValue> Values);

public sealed record Parameter(string Name, ParameterValue Value);

/// <summary>Attempts per index and the exponential backoff between them.</summary>
public sealed record RetryPolicy(int Attempts, double BackoffSeconds, double MaxBackoffSeconds)
{
    public static readonly RetryPolicy Default = new(1, 1, 300);

    /// <summary>Delay before attempt <paramref name="nextAttempt"/> (2, 3, …) of an index.</summary>
    public TimeSpan BackoffBefore(int nextAttempt)
    {
        var exponent = Math.Clamp(nextAttempt - 2, 0, 30);
        var seconds = Math.Min(BackoffSeconds * Math.Pow(2, exponent), MaxBackoffSeconds);
        return TimeSpan.FromSeconds(seconds);
    }
}

/// <summary>Where results go (cluster backends) and what the workload writes.</summary>
public sealed record ResultsSpec(string? Uri, ResultsFormat Format)
{
    public static readonly ResultsSpec Default = new(null, ResultsFormat.Jsonl);
}
