using System.ComponentModel.DataAnnotations;
using System.Reflection;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.S3;
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
    /// <summary>Settings the controller reads directly rather than binding an options class to their section.</summary>
    private static readonly string[] ReadDirectly = ["BatchRunner:Logging:Format"];

    private static readonly Lazy<Dictionary<string, Type>> OptionsBySection = new(FindOptions);

    public static TheoryData<string, string> Targets() => new()
    {
        { "", "" },
        { "values-minikube.yaml", "" },
        { "values-eks.yaml", "" },
        { "", "sqs.enabled=true,sqs.queueName=jobs,sqs.tenants.allowedImages={ghcr.io/acme/*},leaderElection.leaseName=br-lease,sqs.maxBodyBytes=1000000" },
        // Results on a cluster whose pods have no AWS identity, with keys in a Secret of the user's own.
        { "", "results.enabled=true,results.bucket=sweeps,results.credentialsSecret=s3-keys,results.partSizeBytes=67108864,kubernetes.execImage=registry.example/batchrunner/controller:1.2" },
        { "values-eks.yaml", "awsBatch.platformVersion=1.4.0,awsBatch.assignPublicIp=true,awsBatch.pollSeconds=2,awsBatch.maxPollSeconds=120,awsBatch.execPath=/usr/local/bin/batchrunner-exec" },
        // --set makes whole numbers numbers (and leaves decimals text: a values file gives those, as the next test does).
        { "", "prices.kubernetes.vcpuHour=1,prices.kubernetes.gibHour=0" },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_setting_names_an_option_of_its_section(string valuesFile, string set)
    {
        var settings = Settings(valuesFile, set);
        Assert.NotEmpty(settings);
        foreach (var key in settings.Keys)
        {
            if (ReadDirectly.Contains(key))
            {
                continue;
            }

            var parts = key.Split(':');
            var section = $"{parts[0]}:{parts[1]}";
            Assert.True(OptionsBySection.Value.TryGetValue(section, out var type), $"{key}: no options class binds {section}");
            AssertPath(type!, parts.Skip(2).ToArray(), key);
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
        var results = configuration.GetSection(ResultsOptions.Section).Get<ResultsOptions>() ?? new ResultsOptions();
        Valid(results);
        var awsBatch = configuration.GetSection(AwsBatchOptions.Section).Get<AwsBatchOptions>() ?? new AwsBatchOptions();
        Valid(awsBatch);
        Assert.True(!awsBatch.Enabled || results.IsConfigured, "AWS Batch without a results store");
        var athena = configuration.GetSection(AthenaOptions.Section).Get<AthenaOptions>() ?? new AthenaOptions();
        Assert.Empty(athena.Errors());

        static Dictionary<string, string?> settings(string f, string s) => Settings(f, s);
    }

    [Fact]
    public void Every_value_of_the_new_settings_arrives_in_its_options_class()
    {
        var results = Bind<ResultsOptions>("", "results.enabled=true,results.bucket=sweeps,results.credentialsSecret=s3-keys,results.partSizeBytes=67108864", ResultsOptions.Section);
        Assert.Equal(("s3://sweeps/results", "s3-keys", 67_108_864L), (results.Uri, results.CredentialsSecret, results.PartSizeBytes));

        var batch = Bind<AwsBatchOptions>("values-eks.yaml", "awsBatch.platformVersion=1.4.0,awsBatch.assignPublicIp=true,awsBatch.pollSeconds=2,awsBatch.maxPollSeconds=120,awsBatch.execPath=/usr/local/bin/batchrunner-exec,awsBatch.fairShareByNamespace=true", AwsBatchOptions.Section);
        Assert.Equal(("1.4.0", true, 2.0, 120.0, "/usr/local/bin/batchrunner-exec", true), (batch.PlatformVersion, batch.AssignPublicIp, batch.PollSeconds, batch.MaxPollSeconds, batch.ExecPath, batch.FairShareByNamespace));

        // The defaults in values.yaml are the options classes' own.
        var defaults = Bind<AwsBatchOptions>("values-eks.yaml", "", AwsBatchOptions.Section);
        var fresh = new AwsBatchOptions();
        Assert.Equal((fresh.PollSeconds, fresh.MaxPollSeconds, fresh.ExecPath, fresh.AssignPublicIp, fresh.PlatformVersion, fresh.FairShareByNamespace),
            (defaults.PollSeconds, defaults.MaxPollSeconds, defaults.ExecPath, defaults.AssignPublicIp, defaults.PlatformVersion, defaults.FairShareByNamespace));
        Assert.Equal(new ResultsOptions().PartSizeBytes, Bind<ResultsOptions>("values-eks.yaml", "", ResultsOptions.Section).PartSizeBytes);

        var athena = Bind<AthenaOptions>("values-eks.yaml", "", AthenaOptions.Section);
        Assert.Equal(("batchrunner", "batchrunner", "s3://example-batchrunner-results/athena/"), (athena.Database, athena.WorkGroup, athena.OutputLocation));
    }

    [Theory]
    [InlineData("", "batchrunner/controller:0.1.0")]
    [InlineData("values-minikube.yaml", "batchrunner/controller:dev")]
    [InlineData("values-eks.yaml", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/batchrunner/controller:0.1.0")]
    public void Job_pods_install_the_results_wrapper_from_the_controllers_own_image(string valuesFile, string image)
    {
        var objects = Helm.Render(Helm.ValuesArgs(valuesFile)).Objects();
        var deployment = Helm.Single(objects, "Deployment", "batchrunner-controller");
        Assert.Equal(image, Helm.Str(deployment["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]));
        Assert.Equal(image, Bind<KubernetesOptions>(valuesFile, "", KubernetesOptions.Section).ExecImage);
        Assert.Equal("registry.example/x:2", Bind<KubernetesOptions>(valuesFile, "kubernetes.execImage=registry.example/x:2", KubernetesOptions.Section).ExecImage);
    }

    [Fact]
    public void The_chart_leaves_the_client_rate_to_the_controller_unless_a_value_sets_one()
    {
        // Unset, the controller limits itself until the API server shows API Priority and Fairness, then not at all.
        Assert.Null(Bind<KubernetesOptions>("values.yaml", "", KubernetesOptions.Section).Qps);
        Assert.Equal(20, Bind<KubernetesOptions>("values.yaml", "kubernetes.qps=20", KubernetesOptions.Section).Qps);
    }

    [Fact]
    public void On_minikube_job_pods_get_the_in_cluster_stores_credentials_from_a_secret_in_their_namespace()
    {
        var objects = Helm.Render(Helm.ValuesArgs("values-minikube.yaml")).Objects();
        var results = Bind<ResultsOptions>("values-minikube.yaml", "", ResultsOptions.Section);

        Assert.Equal("batchrunner-s3-credentials", results.CredentialsSecret);
        var store = Helm.Single(objects, "Secret", "batchrunner-s3");
        var secret = objects.Single(o => Helm.Str(o["kind"]) == "Secret" && Helm.Str(o["metadata"]!["name"]) == results.CredentialsSecret);
        // Where the examples' BatchJobs live (a pod reads Secrets of its own namespace only).
        Assert.Equal("default", Helm.Str(secret["metadata"]!["namespace"]));
        Assert.Equal(
            (Helm.Str(store["stringData"]!["accessKey"]), Helm.Str(store["stringData"]!["secretKey"])),
            (Helm.Str(secret["stringData"]!["AWS_ACCESS_KEY_ID"]), Helm.Str(secret["stringData"]!["AWS_SECRET_ACCESS_KEY"])));
        Assert.Equal(2, secret["stringData"]!.AsObject().Count);

        // One per namespace listed; none where pods have identities of their own (EKS).
        var two = Helm.Render([.. Helm.ValuesArgs("values-minikube.yaml"), "--set", "s3Store.jobNamespaces={sweeps,team-a}"]).Objects();
        Assert.Equal(["sweeps", "team-a"], two.Where(o => Helm.Str(o["kind"]) == "Secret" && Helm.Str(o["metadata"]!["name"]) == "batchrunner-s3-credentials").Select(o => Helm.Str(o["metadata"]!["namespace"])).Order(StringComparer.Ordinal));
        Assert.Null(Bind<ResultsOptions>("values-eks.yaml", "", ResultsOptions.Section).CredentialsSecret);
    }

    [Fact]
    public void Prices_in_the_values_reach_the_controller_as_the_file_it_reads_on_start_and_none_by_default()
    {
        var values = Path.Combine(Path.GetTempPath(), $"prices-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(values, "prices:\n  kubernetes: {vcpuHour: 0.04, gibHour: 0.004}\n");
        var objects = Helm.Render("-f", values).Objects();
        File.Delete(values);

        var map = Helm.Single(objects, "ConfigMap", "batchrunner-prices");
        var (table, errors) = BatchRunner.Core.Costs.PriceTable.Read(Helm.Str(map["data"]!["prices.json"])!, "prices.json");
        Assert.Empty(errors);
        Assert.Equal(new BatchRunner.Core.Costs.Price(0.04, 0.004), table!.For("kubernetes", null));
        Assert.NotNull(table.For("aws-batch", null));
        var file = Bind<PricesOptions>("", "prices.kubernetes.vcpuHour=1,prices.kubernetes.gibHour=0", PricesOptions.Section).File!;
        var pod = Helm.Single(objects, "Deployment", "batchrunner-controller")["spec"]!["template"]!;
        var mount = pod["spec"]!["containers"]![0]!["volumeMounts"]!.AsArray().Single(m => Helm.Str(m!["name"]) == "prices")!;
        Assert.Equal(Path.GetDirectoryName(file), Helm.Str(mount["mountPath"]));
        Assert.Equal("batchrunner-prices", Helm.Str(pod["spec"]!["volumes"]!.AsArray().Single(v => Helm.Str(v!["name"]) == "prices")!["configMap"]!["name"]));
        Assert.NotNull(pod["metadata"]!["annotations"]!["checksum/prices"]);

        Assert.DoesNotContain(Helm.Render(Helm.ValuesArgs("")).Objects(), o => Helm.Str(o["kind"]) == "ConfigMap" && Helm.Str(o["metadata"]!["name"]) == "batchrunner-prices");
        Assert.Null(Bind<PricesOptions>("", "", PricesOptions.Section).File);
    }

    private static T Bind<T>(string valuesFile, string set, string section)
        where T : new() =>
        new ConfigurationBuilder().AddInMemoryCollection(Settings(valuesFile, set)!).Build().GetSection(section).Get<T>() ?? new T();

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
        Assert.Contains(ResultsOptions.Section, found.Keys);
        Assert.Contains(AwsBatchOptions.Section, found.Keys);
        Assert.Contains(AthenaOptions.Section, found.Keys);
        return found;
    }
}
