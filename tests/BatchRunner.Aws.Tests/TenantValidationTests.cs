using System.ComponentModel.DataAnnotations;
using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests;

/// <summary>
/// <c>BatchRunner:Sqs:Tenants</c> is checked without DataAnnotations' reflection (Native AOT); the errors must be
/// the ones <c>Validator.TryValidateObject</c> gave, message for message.
/// </summary>
public sealed class TenantValidationTests
{
    public static TheoryData<string> Cases() => new(Tenants.Keys);

    private static readonly Dictionary<string, TenantGuardOptions> Tenants = new()
    {
        ["defaults"] = new TenantGuardOptions(),
        ["completions below the range"] = new TenantGuardOptions { MaxCompletions = 0 },
        ["both above the range, and a bad quantity"] = new TenantGuardOptions
        {
            MaxCompletions = SpecLimits.MaxIndexes + 1, MaxParallelism = int.MaxValue, MaxCpu = "lots",
        },
        ["at the edges of the range"] = new TenantGuardOptions { MaxCompletions = SpecLimits.MaxIndexes, MaxParallelism = 1 },
        ["bad quantities and an empty pattern"] = new TenantGuardOptions { MaxCpu = "lots", MaxMemory = "-1", AllowedImages = ["ghcr.io/*", " "] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Tenant_errors_are_the_ones_data_annotations_gave(string name)
    {
        var options = new SqsIntakeOptions { Enabled = true, QueueUrl = "http://127.0.0.1:1/q", Tenants = Tenants[name] };

        var errors = options.Validate(new ValidationContext(options)).ToList();

        var expected = Before(Tenants[name]);
        Assert.Equal(expected.Select(e => (e.ErrorMessage, string.Join(",", e.MemberNames))), errors.Select(e => (e.ErrorMessage, string.Join(",", e.MemberNames))));
        Assert.Equal(name is "defaults" or "at the edges of the range", errors.Count == 0);
    }

    /// <summary>What SqsIntakeOptions reported for its tenants through DataAnnotations' Validator.</summary>
    private static List<ValidationResult> Before(TenantGuardOptions tenants)
    {
        var nested = new List<ValidationResult>();
        Validator.TryValidateObject(tenants, new ValidationContext(tenants), nested, validateAllProperties: true);
        return nested.Select(result => result.ErrorMessage?.StartsWith("Tenants:", StringComparison.Ordinal) == true
            ? result
            : new ValidationResult("Tenants:" + string.Join(",", result.MemberNames) + " " + result.ErrorMessage, result.MemberNames)).ToList();
    }
}
