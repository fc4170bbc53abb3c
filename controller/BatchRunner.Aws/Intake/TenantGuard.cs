using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.RegularExpressions;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// <c>BatchRunner:Sqs:Tenants</c>: what a request from the queue may ask for. Anyone who can send to the queue
/// gets exactly this, so the defaults allow the least that is still useful: the <c>default</c> namespace, no image
/// and no local command until you name the ones you trust, and modest sizes. Patterns are matched against the
/// whole value as written; <c>*</c> stands for any run of characters (<c>ghcr.io/acme/*</c>, <c>team-*</c>).
/// </summary>
public sealed class TenantGuardOptions : IValidatableObject
{
    /// <summary>Namespaces requests may target. Default: <c>default</c> only.</summary>
    public string[]? AllowedNamespaces { get; init; }

    /// <summary>Images that requests for a container backend (kubernetes, aws-batch) may run. Default: none.</summary>
    public string[]? AllowedImages { get; init; }

    /// <summary>
    /// Programs (<c>spec.command[0]</c>) that requests for the local backend may run on the controller's machine.
    /// Default: none: a queue message naming a program is code run on this host, so it must be asked for by name.
    /// </summary>
    public string[]? AllowedCommands { get; init; }

    /// <summary>Most CPU one index may request, as a Kubernetes quantity.</summary>
    public string MaxCpu { get; init; } = "4";

    /// <summary>Most memory one index may request, as a Kubernetes quantity.</summary>
    public string MaxMemory { get; init; } = "16Gi";

    [Range(1, SpecLimits.MaxIndexes)]
    public int MaxCompletions { get; init; } = 10_000;

    [Range(1, SpecLimits.MaxParallelism)]
    public int MaxParallelism { get; init; } = 100;

    /// <summary>The ranges of <see cref="MaxCompletions"/> and <see cref="MaxParallelism"/>, as their attributes state them.</summary>
    private static readonly RangeAttribute IndexLimit = new(1, SpecLimits.MaxIndexes);
    private static readonly RangeAttribute ParallelismLimit = new(1, SpecLimits.MaxParallelism);

    public IReadOnlyList<string> EffectiveNamespaces => AllowedNamespaces ?? [ObjectMeta.DefaultNamespace];

    public IReadOnlyList<string> EffectiveImages => AllowedImages ?? [];

    public IReadOnlyList<string> EffectiveCommands => AllowedCommands ?? [];

    /// <summary>
    /// What <c>Validator.TryValidateObject(this, …, validateAllProperties: true)</c> reports, with the same
    /// messages, without its reflection (not trim-safe; the CLI is published as Native AOT): the ranges first,
    /// and <see cref="Validate"/> only when they hold.
    /// </summary>
    internal IEnumerable<ValidationResult> ValidateSection()
    {
        var ranges = new List<ValidationResult>();
        foreach (var (name, value, limit) in new[] { (nameof(MaxCompletions), MaxCompletions, IndexLimit), (nameof(MaxParallelism), MaxParallelism, ParallelismLimit) })
        {
            if (!limit.IsValid(value))
            {
                ranges.Add(new ValidationResult(limit.FormatErrorMessage(name), [name]));
            }
        }

        return ranges.Count > 0 ? ranges : Validate(new ValidationContext(this, nameof(TenantGuardOptions), null, null));
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Quantity.TryParseMilliCpu(MaxCpu, out _, out var cpuError))
        {
            yield return new ValidationResult($"Tenants:MaxCpu {cpuError}", [nameof(MaxCpu)]);
        }

        if (!Quantity.TryParseBytes(MaxMemory, out _, out var memoryError))
        {
            yield return new ValidationResult($"Tenants:MaxMemory {memoryError}", [nameof(MaxMemory)]);
        }

        foreach (var (name, patterns) in new[] { ("AllowedNamespaces", AllowedNamespaces), ("AllowedImages", AllowedImages), ("AllowedCommands", AllowedCommands) })
        {
            if (patterns?.Any(string.IsNullOrWhiteSpace) == true)
            {
                yield return new ValidationResult($"Tenants:{name} has an empty pattern (it would match nothing)", [name]);
            }
        }
    }
}

/// <summary>Refuses requests that go beyond <see cref="TenantGuardOptions"/>, naming every reason at once.</summary>
public sealed class TenantGuard
{
    private readonly TenantGuardOptions _options;
    private readonly Regex[] _namespaces;
    private readonly Regex[] _images;
    private readonly Regex[] _commands;
    private readonly long _maxMilliCpu;
    private readonly long _maxMemoryBytes;

    public TenantGuard(TenantGuardOptions options)
    {
        _options = options;
        _namespaces = [.. options.EffectiveNamespaces.Select(Glob)];
        _images = [.. options.EffectiveImages.Select(Glob)];
        _commands = [.. options.EffectiveCommands.Select(Glob)];
        _maxMilliCpu = Quantity.TryParseMilliCpu(options.MaxCpu, out var cpu, out var cpuError) ? cpu : throw new ArgumentException(cpuError, nameof(options));
        _maxMemoryBytes = Quantity.TryParseBytes(options.MaxMemory, out var memory, out var memoryError) ? memory : throw new ArgumentException(memoryError, nameof(options));
    }

    /// <summary>Null when the job may be accepted; else every reason it may not, separated by "; ".</summary>
    public string? Check(BatchJob job)
    {
        var reasons = new List<string>();
        var spec = job.Spec;
        if (!Matches(_namespaces, job.Metadata.Namespace))
        {
            reasons.Add($"namespace \"{job.Metadata.Namespace}\" is not one the queue may use ({List(_options.EffectiveNamespaces)})");
        }

        if (spec.Backend == Backend.Local)
        {
            // The local backend runs the command on this host: it, not the image, is what runs.
            var program = spec.Command.Count > 0 ? spec.Command[0] : "";
            if (!Matches(_commands, program))
            {
                reasons.Add($"command \"{program}\" is not one the queue may run on this host ({List(_options.EffectiveCommands, "Tenants:AllowedCommands")})");
            }
        }
        else if (spec.Image is not { } image || !Matches(_images, image))
        {
            reasons.Add($"image \"{spec.Image}\" is not one the queue may run ({List(_options.EffectiveImages, "Tenants:AllowedImages")})");
        }

        if (spec.Resources.MilliCpu > _maxMilliCpu)
        {
            reasons.Add($"spec.resources.cpu {spec.Resources.Cpu} is more than the limit of {_options.MaxCpu}");
        }

        if (spec.Resources.MemoryBytes > _maxMemoryBytes)
        {
            reasons.Add($"spec.resources.memory {spec.Resources.Memory} is more than the limit of {_options.MaxMemory}");
        }

        if (spec.Completions > _options.MaxCompletions)
        {
            reasons.Add(string.Create(CultureInfo.InvariantCulture, $"spec.completions {spec.Completions} is more than the limit of {_options.MaxCompletions}"));
        }

        if (spec.Parallelism > _options.MaxParallelism)
        {
            reasons.Add(string.Create(CultureInfo.InvariantCulture, $"spec.parallelism {spec.Parallelism} is more than the limit of {_options.MaxParallelism}"));
        }

        return reasons.Count == 0 ? null : string.Join("; ", reasons);
    }

    private static bool Matches(Regex[] patterns, string value) => patterns.Any(p => p.IsMatch(value));

    private static string List(IReadOnlyList<string> allowed, string? setting = null) =>
        allowed.Count == 0 ? $"none is allowed until {setting} names some" : "allowed: " + string.Join(", ", allowed);

    /// <summary>A whole-value pattern where <c>*</c> is any run of characters; non-backtracking, so no pattern is slow.</summary>
    private static Regex Glob(string pattern) =>
        new("^" + string.Join(".*", pattern.Split('*').Select(Regex.Escape)) + "$", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
}
