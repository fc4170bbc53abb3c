using System.Globalization;

namespace BatchRunner.Exec;

/// <summary>
/// <c>batchrunner-exec --spec PATH|s3://… --store s3://…|PATH [--region R] [--endpoint-url URL] [--force-path-style]
/// [--part-size BYTES] -- COMMAND ARGS…</c>. Settings not given come from <c>BatchRunner__Results__*</c> variables.
/// </summary>
public sealed record ExecArguments(
    string Spec, string Store, IReadOnlyList<string> Command, string? Region, string? EndpointUrl, bool? ForcePathStyle, long? PartSizeBytes)
{
    public const string Usage =
        "usage: batchrunner-exec --spec <path or s3://bucket/key> --store <s3://bucket/prefix or path> " +
        "[--region R] [--endpoint-url URL] [--force-path-style] [--part-size BYTES] -- <command> [args...]";

    /// <exception cref="FormatException">What is wrong with the arguments.</exception>
    public static ExecArguments Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        string? spec = null, store = null, region = null, endpoint = null;
        bool? pathStyle = null;
        long? partSize = null;
        var i = 0;
        string Value(string name) => i + 1 < args.Count ? args[++i] : throw new FormatException($"{name}: a value is required");
        for (; i < args.Count && args[i] != "--"; i++)
        {
            switch (args[i])
            {
                case "--spec": spec = Value("--spec"); break;
                case "--store": store = Value("--store"); break;
                case "--region": region = Value("--region"); break;
                case "--endpoint-url": endpoint = Value("--endpoint-url"); break;
                case "--force-path-style": pathStyle = true; break;
                case "--part-size":
                    var text = Value("--part-size");
                    partSize = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
                        ? bytes : throw new FormatException($"--part-size: expected a number of bytes, got \"{text}\"");
                    break;
                default: throw new FormatException($"{args[i]}: unknown option (the command comes after --)");
            }
        }

        var command = i < args.Count ? args.Skip(i + 1).ToList() : [];
        store ??= environment("BatchRunner__Results__Uri");
        if (spec is null || store is null || command.Count == 0)
        {
            var missing = new[] { spec is null ? "--spec" : null, store is null ? "--store" : null, command.Count == 0 ? "a command after --" : null };
            throw new FormatException($"missing {string.Join(", ", missing.Where(m => m is not null))}");
        }

        return new ExecArguments(spec, store, command, region, endpoint, pathStyle, partSize);
    }
}
