namespace BatchRunner.Core.Spec;

/// <summary>One reason a document was rejected, named by its field path (<c>spec.parallelism</c>).</summary>
public sealed record SpecError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}

/// <summary>Raised by callers that want an exception rather than a result; carries every error at once.</summary>
public sealed class InvalidSpecException(IReadOnlyList<SpecError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<SpecError> Errors { get; } = errors;
}

/// <summary>The outcome of parsing one document: a job, or all the reasons there is none.</summary>
public sealed record ParseResult(BatchJob? Job, IReadOnlyList<SpecError> Errors)
{
    public bool IsValid => Job is not null && Errors.Count == 0;

    public BatchJob GetJobOrThrow() => IsValid ? Job! : throw new InvalidSpecException(Errors);
}
