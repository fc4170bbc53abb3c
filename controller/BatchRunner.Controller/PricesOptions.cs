using BatchRunner.Core.Costs;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller;

/// <summary>
/// <c>BatchRunner:Prices</c>: the prices a BatchJob's <c>spec.budget</c> is projected at — the price table's defaults
/// (Fargate, see <see cref="PriceTable.DefaultsAsOf"/>), with a price file over them (as <c>batchrunner cost --prices</c>
/// reads: <c>{"kubernetes": {"vcpuHour": 0.04, "gibHour": 0.004}}</c>). A file that does not read stops the start.
/// </summary>
public sealed class PricesOptions
{
    public const string Section = "BatchRunner:Prices";

    /// <summary>A JSON price file (the chart mounts one from its values); none: the defaults only.</summary>
    public string? File { get; init; }

    public PriceTable Load()
    {
        var (table, errors) = Read();
        return table ?? throw new OptionsValidationException(Section, typeof(PricesOptions), errors);
    }

    private (PriceTable? Table, IReadOnlyList<string> Errors) Read()
    {
        if (string.IsNullOrWhiteSpace(File))
        {
            return (PriceTable.Defaults, []);
        }

        try
        {
            return PriceTable.Read(System.IO.File.ReadAllText(File), File);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, [$"{Section}:File: {e.Message}"]);
        }
    }

    /// <summary>Checked on start, every error naming its entry.</summary>
    public sealed class Validator : IValidateOptions<PricesOptions>
    {
        public ValidateOptionsResult Validate(string? name, PricesOptions options) =>
            options.Read() is { Table: null, Errors: var errors } ? ValidateOptionsResult.Fail(errors.Select(e => $"{Section}: {e}")) : ValidateOptionsResult.Success;
    }
}
