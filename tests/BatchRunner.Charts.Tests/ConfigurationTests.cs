using System.ComponentModel.DataAnnotations;
using System.Reflection;
using BatchRunner.Aws.Intake;
using BatchRunner.Controller;
using Microsoft.Extensions.Configuration;

namespace BatchRunner.Charts.Tests;

/// <summary>
/// The environment the chart gives the controller is configuration the controller reads: every
/// BatchRunner__Section__Key names a property of the options class bound to that section, and the controller's
/// own start-up validation accepts what each target's values give.
/// </summary>
public class ConfigurationTests
{
    /// <summary>
    /// Sections agreed between the issues whose options classes are not in this build yet (AWS Batch, results,
    /// Athena), by their agreed keys; once a class with <c>const string Section = "BatchRunner:X"</c> is in a
    /// referenced assembly, that class is used instead. Logging:Format is read directly, not bound.
    /// </summary>
    private static readonly Dictionary<string, string[]> AgreedKeys = new(StringComparer.Ordinal)
    {
        ["BatchRunner:AwsBatch"] = ["Enabled", "JobQueue", "SpotJobQueue", "ExecutionRoleArn", "JobRoleArn", "Region", "EndpointUrl", "LogGroup", "ShareIdentifier", "SubmitJobsPerSecond", "ExecImage"],
        ["BatchRunner:Results"] = ["Uri", "Region", "EndpointUrl", "ForcePathStyle"],
        ["BatchRunner:Athena"] = ["Database", "WorkGroup", "OutputLocation", "Region", "EndpointUrl"],
        ["BatchRunner:Logging"] = ["Format"],
    };

    private static readonly Lazy<Dictionary<string, Type>> OptionsBySection = new(FindOptions);

    public static TheoryData<string, string> Targets() => new()
    {
        { "", "" },
        { "values-minikube.yaml", "" },
        { "values-eks.yaml", "" },
        { "", "sqs.enabled=true,sqs.queueName=jobs,sqs.tenants.allowedImages={ghcr.io/acme/*},leaderElection.leaseName=br-lease,sqs.maxBodyBytes=1000000" },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_setting_names_an_option_of_its_section(string valuesFile, string set)
    {
        var settings = Settings(valuesFile, set);
        Assert.NotEmpty(settings);
        foreach (var key in settings.Keys)
        {
            var parts = key.Split(':');
            var section = $"{parts[0]}:{parts[1]}";
            if (OptionsBySection.Value.TryGetValue(section, out var type))
            {
                AssertPath(type, parts.Skip(2).ToArray(), key);
            }
            else
            {
                Assert.True(AgreedKeys.TryGetValue(section, out var keys), $"{key}: no options class binds {section}");
                Assert.Contains(parts[2], keys);
                Assert.Equal(3, parts.Length);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_controller_accepts_the_configuration_each_target_gives(string valuesFile, string set)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Settings(valuesFile, set)!).Build();

        Valid(configuration.GetSection(KubernetesOptions.Section).Get<KubernetesOptions>() ?? new KubernetesOptions());
        Valid(configuration.GetSection(LeaderElectionOptions.Section).Get<LeaderElectionOptions>() ?? new LeaderElectionOptions());
        var sqs = configuration.GetSection(SqsIntakeOptions.Section).Get<SqsIntakeOptions>() ?? new SqsIntakeOptions();
        Valid(sqs);
        Assert.Equal(settings(valuesFile, set).ContainsKey("BatchRunner:Sqs:Enabled"), sqs.Enabled);

        static Dictionary<string, string?> settings(string f, string s) => Settings(f, s);
    }

    [Fact]
    public void Lists_and_large_numbers_arrive_as_the_controller_binds_them()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Settings("", "sqs.enabled=true,sqs.queueName=jobs,sqs.tenants.allowedImages={ghcr.io/acme/*,docker.io/x/*},sqs.maxBodyBytes=1000000")!).Build();
        var sqs = configuration.GetSection(SqsIntakeOptions.Section).Get<SqsIntakeOptions>()!;

        Assert.Equal(["ghcr.io/acme/*", "docker.io/x/*"], sqs.Tenants.AllowedImages!);
        Assert.Equal(["default"], sqs.Tenants.AllowedNamespaces!);
        // A values file's numbers are floats to the template engine; 1000000 must not arrive as 1e+06.
        Assert.Equal(1_000_000, sqs.MaxBodyBytes);
        Assert.Equal("jobs", sqs.QueueName);
    }

    /// <summary>The controller's BatchRunner__* variables as configuration keys (BatchRunner:Section:Key).</summary>
    private static Dictionary<string, string?> Settings(string valuesFile, string set)
    {
        string[] args = set.Length == 0 ? Helm.ValuesArgs(valuesFile) : [.. Helm.ValuesArgs(valuesFile), "--set", set];
        var deployment = Helm.Single(Helm.Render(args).Objects(), "Deployment", "batchrunner-controller");
        var env = ChartRenderTests.Env(deployment["spec"]!["template"]!["spec"]!["containers"]![0]!);
        return env.Where(kv => kv.Key.StartsWith("BatchRunner__", StringComparison.Ordinal) && kv.Value["value"] is not null)
            .ToDictionary(kv => kv.Key.Replace("__", ":", StringComparison.Ordinal), kv => Helm.Str(kv.Value["value"]));
    }

    private static void AssertPath(Type type, string[] path, string key)
    {
        var current = type;
        for (var i = 0; i < path.Length; i++)
        {
            var property = current.GetProperty(path[i], BindingFlags.Public | BindingFlags.Instance);
            Assert.True(property is not null, $"{key}: {current.Name} has no property {path[i]}");
            var propertyType = property!.PropertyType;
            if (propertyType.IsArray)
            {
                Assert.True(i + 2 == path.Length && int.TryParse(path[i + 1], out _), $"{key}: {path[i]} is a list, indexed by a number");
                return;
            }

            current = Nullable.GetUnderlyingType(propertyType) ?? propertyType;
        }

        Assert.True(current.IsPrimitive || current == typeof(string) || current == typeof(decimal) || current.IsEnum, $"{key}: {current.Name} is not a single setting");
    }

    private static void Valid(object options)
    {
        var results = new List<ValidationResult>();
        var valid = Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        Assert.True(valid, $"{options.GetType().Name}: {string.Join("; ", results.Select(r => r.ErrorMessage))}");
    }

    private static Dictionary<string, Type> FindOptions()
    {
        var assemblies = new[] { typeof(KubernetesOptions).Assembly }
            .Concat(typeof(KubernetesOptions).Assembly.GetReferencedAssemblies().Where(a => a.Name!.StartsWith("BatchRunner.", StringComparison.Ordinal)).Select(Assembly.Load));
        var found = new Dictionary<string, Type>(StringComparer.Ordinal);
        foreach (var type in assemblies.SelectMany(a => a.GetTypes()))
        {
            if (type.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && field.GetValue(null) is string section)
            {
                found[section] = type;
            }
        }

        Assert.Contains(KubernetesOptions.Section, found.Keys);
        Assert.Contains(SqsIntakeOptions.Section, found.Keys);
        return found;
    }
}
