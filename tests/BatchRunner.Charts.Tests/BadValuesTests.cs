namespace BatchRunner.Charts.Tests;

/// <summary>A wrong value fails the install before anything is applied, with a message that names the value.</summary>
public class BadValuesTests
{
    public static TheoryData<string, string, string> BadSets() => new()
    {
        { "a string for a number", "replicaCount=two", "replicaCount: Invalid type. Expected: integer, given: string" },
        { "a number for a boolean", "sqs.enabled=1", "sqs.enabled: Invalid type. Expected: boolean, given: integer" },
        { "an unknown setting (a typo)", "sqs.queueURL=https://x", "sqs: Additional property queueURL is not allowed" },
        { "a format that does not exist", "logging.format=xml", "logging.format: logging.format must be one of the following: \"plain\", \"json\"" },
        { "a role that is not an IAM role ARN", "serviceAccount.roleArn=batchrunner", "serviceAccount.roleArn: Does not match pattern" },
        { "a bucket name S3 refuses", "results.enabled=true,results.bucket=My_Bucket", "results.bucket: Does not match pattern" },
        { "a worker count the controller refuses", "kubernetes.workers=0", "kubernetes.workers: Must be greater than or equal to 1" },
        { "SQS intake without a queue", "sqs.enabled=true", "sqs.queueUrl is required when sqs.enabled is true" },
        { "SQS intake with nowhere for refusals", "sqs.enabled=true,sqs.queueUrl=https://sqs.eu-west-1.amazonaws.com/1/q,sqs.useRedrivePolicy=false", "sqs.deadLetterQueueUrl is required when sqs.useRedrivePolicy is false" },
        { "AWS Batch without a job queue", "awsBatch.enabled=true,results.enabled=true,results.bucket=results-bucket", "awsBatch.jobQueue is required when awsBatch.enabled is true" },
        { "AWS Batch without an execution role", "awsBatch.enabled=true,awsBatch.jobQueue=q,results.enabled=true,results.bucket=results-bucket", "awsBatch.executionRoleArn is required when awsBatch.enabled is true" },
        { "AWS Batch without results in S3", "awsBatch.enabled=true,awsBatch.jobQueue=q,awsBatch.executionRoleArn=arn:aws:iam::123456789012:role/e,awsBatch.jobRoleArn=arn:aws:iam::123456789012:role/j", "awsBatch.enabled needs results.enabled" },
        { "S3 results without a bucket", "results.enabled=true", "results.bucket is required when results.enabled is true" },
        { "Athena without results in S3", "athena.enabled=true", "athena.enabled needs results.enabled" },
        { "two replicas without leader election", "leaderElection.enabled=false", "replicaCount is 2 but leaderElection.enabled is false" },
        { "a renew deadline past the lease", "leaderElection.renewDeadlineSeconds=20", "leaderElection.renewDeadlineSeconds must be less than leaderElection.leaseDurationSeconds" },
        { "a disruption budget no drain could meet", "replicaCount=1,leaderElection.enabled=true", "podDisruptionBudget.minAvailable (1) must be less than replicaCount (1)" },
        { "a disruption budget set from the command line", "replicaCount=3,podDisruptionBudget.minAvailable=3", "podDisruptionBudget.minAvailable (3) must be less than replicaCount (3)" },
        { "no service account to run as", "serviceAccount.create=false", "serviceAccount.name is required when serviceAccount.create is false" },
        { "a service monitor without the service", "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false", "metrics.serviceMonitor.enabled needs metrics.service.enabled" },
    };

    [Theory]
    [MemberData(nameof(BadSets))]
    public void A_bad_value_fails_naming_it(string what, string set, string message)
    {
        var rendering = Helm.Render("--set", set);

        Assert.True(rendering.ExitCode == 1, $"{what}: rendered anyway");
        Assert.Equal("", rendering.Output);
        Assert.StartsWith("Error: ", rendering.Error, StringComparison.Ordinal);
        Assert.Contains(message, rendering.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_values_file_with_a_wrong_type_fails_naming_every_bad_value()
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchrunner-values-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, """
            kubernetes:
              workers: four
            sqs:
              maxConcurrency: 2.5
              tenants:
                allowedNamespaces: default
            """);
        try
        {
            var rendering = Helm.Render("-f", file);

            Assert.Equal(1, rendering.ExitCode);
            Assert.Contains("values don't meet the specifications of the schema(s) in the following chart(s):\nbatchrunner:", rendering.Error, StringComparison.Ordinal);
            Assert.Contains("- kubernetes.workers: Invalid type. Expected: integer, given: string", rendering.Error, StringComparison.Ordinal);
            Assert.Contains("- sqs.maxConcurrency: Invalid type. Expected: integer, given: number", rendering.Error, StringComparison.Ordinal);
            Assert.Contains("- sqs.tenants.allowedNamespaces: Invalid type. Expected: array, given: string", rendering.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void The_same_features_with_their_values_render()
    {
        // The positive twin of the cases above: each switched-on feature with what it needs renders.
        var rendering = Helm.Render("--set",
            "sqs.enabled=true,sqs.queueName=jobs,awsBatch.enabled=true,awsBatch.jobQueue=q,awsBatch.executionRoleArn=arn:aws:iam::123456789012:role/e," +
            "awsBatch.jobRoleArn=arn:aws:iam::123456789012:role/j,results.enabled=true,results.bucket=results-bucket,athena.enabled=true");

        Assert.True(rendering.ExitCode == 0, rendering.Error);
        Assert.Contains("BatchRunner__Sqs__QueueName", rendering.Output, StringComparison.Ordinal);
    }
}
