using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace BatchRunner.Charts.Tests;

/// <summary>
/// charts/batchrunner/iam: the controller role's policy grants every AWS action the controller's code calls
/// (found in its sources with the official API models of Debian's python3-botocore), nothing by wildcard, on the
/// resources values-eks.yaml names; the trust relationship lets only the chart's service account assume it.
/// </summary>
public class IamPolicyTests
{
    private const string Botocore = "/usr/lib/python3/dist-packages/botocore/data";

    private static readonly string IamFolder = Path.Combine(Helm.ChartPath, "iam");
    private static readonly JsonObject Policy = JsonNode.Parse(File.ReadAllText(Path.Combine(IamFolder, "controller-policy.json")))!.AsObject();
    private static readonly JsonObject Trust = JsonNode.Parse(File.ReadAllText(Path.Combine(IamFolder, "controller-trust-policy.json")))!.AsObject();
    private static readonly JsonObject Eks = Yaml(File.ReadAllText(Path.Combine(Helm.ChartPath, "values-eks.yaml")));

    /// <summary>Actions that take no resource-level permission in IAM, so "*" is their only resource.</summary>
    private static readonly string[] NoResourceLevel = ["batch:DescribeJobs", "batch:ListJobs", "batch:DescribeJobDefinitions", "batch:DescribeJobQueues", "batch:DescribeComputeEnvironments"];

    /// <summary>S3 operations whose IAM action has another name.</summary>
    private static readonly Dictionary<string, string[]> S3Actions = new(StringComparer.Ordinal)
    {
        ["HeadObject"] = ["GetObject"], ["CreateMultipartUpload"] = ["PutObject"], ["UploadPart"] = ["PutObject"],
        ["CompleteMultipartUpload"] = ["PutObject"], ["ListParts"] = ["ListMultipartUploadParts"], ["ListObjectsV2"] = ["ListBucket"],
        ["ListObjects"] = ["ListBucket"], ["HeadBucket"] = ["ListBucket"], ["ListMultipartUploads"] = ["ListBucketMultipartUploads"],
        ["DeleteObjects"] = ["DeleteObject"], ["CopyObject"] = ["GetObject", "PutObject"],
    };

    [Fact]
    public void The_policy_grants_every_action_the_controller_calls()
    {
        var used = ActionsUsedByTheController();
        // Today's code paths alone (SQS intake) make this non-empty; AWS Batch, S3 and Athena add theirs when they land.
        Assert.Contains("sqs:ReceiveMessage", used);
        Assert.Contains("sqs:DeleteMessage", used);

        var granted = Granted();
        var missing = used.Where(a => !granted.Contains(a)).ToList();
        Assert.True(missing.Count == 0, $"the controller calls, and the policy does not grant: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Nothing_is_granted_by_wildcard_and_star_resources_only_where_iam_has_no_other()
    {
        Assert.Equal("2012-10-17", Helm.Str(Policy["Version"]));
        var sids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var statement in Policy["Statement"]!.AsArray())
        {
            Assert.Equal("Allow", Helm.Str(statement!["Effect"]));
            Assert.True(sids.Add(Helm.Str(statement["Sid"])!), "every statement has its own Sid");
            Assert.Null(statement["NotAction"]);
            Assert.Null(statement["NotResource"]);
            var actions = Strings(statement["Action"]);
            Assert.All(actions, a => Assert.Matches("^[a-z0-9]+:[A-Za-z]+$", a)); // no "s3:*", no "Get*"
            var resources = Strings(statement["Resource"]);
            Assert.NotEmpty(resources);
            if (resources.Contains("*"))
            {
                Assert.Equal(["*"], resources);
                Assert.All(actions, a => Assert.Contains(a, NoResourceLevel));
            }
        }
    }

    [Fact]
    public void The_resources_are_those_of_the_eks_values()
    {
        var byAction = Policy["Statement"]!.AsArray()
            .SelectMany(s => Strings(s!["Action"]).Select(a => (Action: a, Resources: Strings(s["Resource"]))))
            .GroupBy(p => p.Action).ToDictionary(g => g.Key, g => g.SelectMany(p => p.Resources).ToHashSet(StringComparer.Ordinal));

        // https://sqs.REGION.amazonaws.com/ACCOUNT/NAME is arn:aws:sqs:REGION:ACCOUNT:NAME.
        var queue = new Uri(Helm.Str(Eks["sqs"]!["queueUrl"])!);
        var queueArn = $"arn:aws:sqs:{queue.Host.Split('.')[1]}:{queue.Segments[1].TrimEnd('/')}:{queue.Segments[2]}";
        Assert.Equal([queueArn], byAction["sqs:ReceiveMessage"]);
        Assert.Equal([queueArn], byAction["sqs:DeleteMessage"]);
        Assert.DoesNotContain(queueArn, byAction["sqs:SendMessage"]); // only the dead-letter queue is written to

        var bucket = Helm.Str(Eks["results"]!["bucket"])!;
        var prefix = Helm.Str(Eks["results"]!["prefix"])!;
        Assert.Equal([$"arn:aws:s3:::{bucket}"], byAction["s3:ListBucket"]);
        Assert.Contains($"arn:aws:s3:::{bucket}/{prefix}/*", byAction["s3:PutObject"]);
        var output = Helm.Str(Eks["athena"]!["outputLocation"])!["s3://".Length..].TrimEnd('/');
        Assert.Contains($"arn:aws:s3:::{output}/*", byAction["s3:PutObject"]);
        Assert.All(byAction["s3:PutObject"], r => Assert.StartsWith($"arn:aws:s3:::{bucket}/", r, StringComparison.Ordinal));

        foreach (var key in new[] { "jobQueue", "spotJobQueue" })
        {
            Assert.Contains(byAction["batch:SubmitJob"], r => r.EndsWith($":job-queue/{Helm.Str(Eks["awsBatch"]![key])}", StringComparison.Ordinal));
        }

        Assert.Equal(
            new[] { Helm.Str(Eks["awsBatch"]!["executionRoleArn"]), Helm.Str(Eks["awsBatch"]!["jobRoleArn"]) }.Order(StringComparer.Ordinal),
            byAction["iam:PassRole"].Order(StringComparer.Ordinal));
        Assert.Equal([$"arn:aws:athena:eu-west-1:123456789012:workgroup/{Helm.Str(Eks["athena"]!["workGroup"])}"], byAction["athena:StartQueryExecution"]);
        Assert.Contains($"arn:aws:glue:eu-west-1:123456789012:database/{Helm.Str(Eks["athena"]!["database"])}", byAction["glue:CreateTable"]);
    }

    [Fact]
    public void Only_the_charts_service_account_may_assume_the_role()
    {
        var objects = Helm.Render(Helm.ValuesArgs("values-eks.yaml")).Objects();
        var account = Helm.Single(objects, "ServiceAccount", "batchrunner-controller");
        var roleArn = Helm.Str(account["metadata"]!["annotations"]!["eks.amazonaws.com/role-arn"])!;

        var statement = Assert.Single(Trust["Statement"]!.AsArray())!;
        Assert.Equal("Allow", Helm.Str(statement["Effect"]));
        Assert.Equal("sts:AssumeRoleWithWebIdentity", Helm.Str(statement["Action"]));
        var provider = Helm.Str(statement["Principal"]!["Federated"])!;
        Assert.Matches("^arn:aws:iam::[0-9]{12}:oidc-provider/oidc\\.eks\\.[a-z0-9-]+\\.amazonaws\\.com/id/[A-Z0-9]+$", provider);
        Assert.Equal(roleArn.Split(':')[4], provider.Split(':')[4]); // the same account as the role
        var issuer = provider[(provider.IndexOf('/') + 1)..];
        var conditions = statement["Condition"]!["StringEquals"]!.AsObject();
        Assert.Equal(2, conditions.Count);
        Assert.Equal($"system:serviceaccount:{Helm.Namespace}:{Helm.Str(account["metadata"]!["name"])}", Helm.Str(conditions[$"{issuer}:sub"]));
        Assert.Equal("sts.amazonaws.com", Helm.Str(conditions[$"{issuer}:aud"]));
    }

    [Fact]
    public void The_readme_shows_the_policy_and_the_trust_relationship_as_the_files_hold_them()
    {
        var readme = File.ReadAllText(Path.Combine(Helm.RepoRoot, "README.md"));
        foreach (var file in new[] { "controller-policy.json", "controller-trust-policy.json" })
        {
            var json = File.ReadAllText(Path.Combine(IamFolder, file)).Trim();
            Assert.True(readme.Contains(json, StringComparison.Ordinal), $"README.md does not show charts/batchrunner/iam/{file} as it is");
        }
    }

    /// <summary>
    /// Every AWS action the controller's assemblies call: an operation of a botocore model is called when a
    /// source file that uses the service names it as the SDK does (<c>OpAsync</c>, <c>OpRequest</c>), as a JSON
    /// protocol target (<c>"Op"</c>, <c>Prefix.Op</c>) or by a REST operation's path (<c>"/v1/submitjob"</c>).
    /// </summary>
    private static SortedSet<string> ActionsUsedByTheController()
    {
        Assert.True(Directory.Exists(Botocore), $"{Botocore} is missing: tests/helm/build.sh installs python3-botocore");
        var controller = Path.Combine(Helm.RepoRoot, "controller");
        // The controller's assemblies; the CLI runs as its user and the results wrapper as the job role.
        var sources = new[] { "BatchRunner.Core", "BatchRunner.Kubernetes", "BatchRunner.Local", "BatchRunner.Aws", "BatchRunner.Controller" }
            .Select(p => Path.Combine(controller, p)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText).ToList();

        var used = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (service, version, prefix, marker) in new[]
        {
            ("sqs", "2012-11-05", "sqs", "Amazon.SQS"), ("s3", "2006-03-01", "s3", "Amazon.S3"), ("batch", "2016-08-10", "batch", "/v1/"),
            ("athena", "2017-05-18", "athena", "AmazonAthena"), ("glue", "2017-03-31", "glue", "AWSGlue"),
        })
        {
            var model = JsonNode.Parse(File.ReadAllText(Path.Combine(Botocore, service, version, "service-2.json")))!;
            var target = Helm.Str(model["metadata"]!["targetPrefix"]);
            var files = sources.Where(s => s.Contains(marker, StringComparison.Ordinal)).ToList();
            foreach (var (operation, definition) in model["operations"]!.AsObject())
            {
                var uri = Helm.Str(definition!["http"]?["requestUri"])?.Split('?')[0];
                var patterns = new List<string> { $@"\b{operation}(Async|Request)\b" };
                if (target is not null)
                {
                    patterns.Add($"\"{operation}\"");
                    patterns.Add($@"{Regex.Escape(target)}\.{operation}\b");
                }

                if (service == "batch" && uri is not null)
                {
                    patterns = [$"\"{Regex.Escape(uri)}\""];
                }

                if (files.Any(f => patterns.Any(p => Regex.IsMatch(f, p))))
                {
                    foreach (var action in ActionsOf(service, prefix, operation))
                    {
                        used.Add(action);
                    }
                }
            }
        }

        return used;
    }

    private static IEnumerable<string> ActionsOf(string service, string prefix, string operation) => service switch
    {
        "sqs" => [$"sqs:{(operation.EndsWith("Batch", StringComparison.Ordinal) ? operation[..^"Batch".Length] : operation)}"],
        "s3" => (S3Actions.TryGetValue(operation, out var actions) ? actions : [operation]).Select(a => $"s3:{a}"),
        _ => [$"{prefix}:{operation}"],
    };

    private static HashSet<string> Granted() =>
        Policy["Statement"]!.AsArray().SelectMany(s => Strings(s!["Action"])).ToHashSet(StringComparer.Ordinal);

    private static List<string> Strings(JsonNode? node) => node switch
    {
        JsonArray array => array.Select(i => Helm.Str(i)!).ToList(),
        JsonValue value => [Helm.Str(value)!],
        _ => [],
    };

    private static JsonObject Yaml(string text) => Assert.Single(ManifestFiles.Load(text));
}
