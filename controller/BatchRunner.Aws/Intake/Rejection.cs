namespace BatchRunner.Aws.Intake;

/// <summary>Why a message can never become a BatchJob. Each is dead-lettered once, never retried.</summary>
public enum RejectCode
{
    /// <summary>The body is empty or only white space (or comments).</summary>
    Empty,

    /// <summary>The body is larger than the configured limit.</summary>
    Oversize,

    /// <summary>The body is text in another encoding than UTF-8 (its bytes arrived as U+FFFD), or not Unicode.</summary>
    NotUtf8,

    /// <summary>The body is binary data, not a text document.</summary>
    Binary,

    /// <summary>The document is not a valid BatchJob: the parser's errors, as the CLI prints them.</summary>
    InvalidSpec,

    /// <summary>The tenant guard refused it: a namespace, image, command or size the queue may not ask for.</summary>
    TenantRefused,

    /// <summary>A BatchJob of that namespace and name exists with different content.</summary>
    NameCollision,

    /// <summary>The sink cannot run it (another backend) or its API refused it as invalid.</summary>
    Unsupported,
}

/// <summary>A refused request: its code (for metrics and filters) and its reason (for people).</summary>
public sealed record Rejection(RejectCode Code, string Reason)
{
    /// <summary>The code as it appears in the <c>BatchRunnerRejectCode</c> attribute and the metrics' <c>reason</c> label.</summary>
    public string CodeName => Name(Code);

    public static string Name(RejectCode code) => code switch
    {
        RejectCode.Empty => "empty",
        RejectCode.Oversize => "oversize",
        RejectCode.NotUtf8 => "not_utf8",
        RejectCode.Binary => "binary",
        RejectCode.InvalidSpec => "invalid_spec",
        RejectCode.TenantRefused => "tenant_refused",
        RejectCode.NameCollision => "name_collision",
        _ => "unsupported",
    };

    public override string ToString() => $"{CodeName}: {Reason}";
}
