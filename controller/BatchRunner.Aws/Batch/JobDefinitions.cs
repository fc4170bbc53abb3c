using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// One AWS Batch job definition per container shape (image, Fargate size, roles, logs, the spec's environment),
/// named by the hash of its content: <c>batchrunner-&lt;hash&gt;</c>. A shape registered once (by any run, or an
/// earlier controller) is found by name and reused, so runs do not pile up revisions. What varies per run or per
/// array (the wrapper's command line, the index offset, retries, timeout, tags) goes into SubmitJob instead.
/// </summary>
public sealed class JobDefinitions(IBatchApi api, ILogger log)
{
    public const string NamePrefix = "batchrunner-";

    private readonly ConcurrentDictionary<string, string> _arns = new(StringComparer.Ordinal);

    /// <summary>The registration request for a shape; its name carries the hash of everything else in it.</summary>
    public static RegisterJobDefinitionRequest For(BatchJob job, FargateSize size, AwsBatchOptions options)
    {
        var logOptions = new Dictionary<string, string>(StringComparer.Ordinal) { ["awslogs-stream-prefix"] = "batchrunner" };
        if (!string.IsNullOrWhiteSpace(options.LogGroup))
        {
            logOptions["awslogs-group"] = options.LogGroup;
        }

        var container = new ContainerProperties
        {
            Image = job.Spec.Image,
            ExecutionRoleArn = options.ExecutionRoleArn,
            JobRoleArn = string.IsNullOrWhiteSpace(options.JobRoleArn) ? null : options.JobRoleArn,
            ResourceRequirements = [new ResourceRequirement("VCPU", size.Vcpu), new ResourceRequirement("MEMORY", size.MemoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            Environment = job.Spec.Env.Count == 0 ? null : job.Spec.Env.Select(e => new NameValue(e.Name, e.Value)).ToList(),
            LogConfiguration = new LogConfiguration("awslogs", logOptions),
            NetworkConfiguration = new NetworkConfiguration(options.AssignPublicIp ? "ENABLED" : "DISABLED"),
            FargatePlatformConfiguration = new FargatePlatformConfiguration(string.IsNullOrWhiteSpace(options.PlatformVersion) ? "LATEST" : options.PlatformVersion),
        };
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(container, BatchJsonContext.Default.ContainerProperties))))[..20];
        return new RegisterJobDefinitionRequest
        {
            JobDefinitionName = NamePrefix + hash,
            ContainerProperties = container,
            PlatformCapabilities = ["FARGATE"],
            PropagateTags = true,
            Tags = new Dictionary<string, string>(StringComparer.Ordinal) { ["batchrunner.io/managed-by"] = "batchrunner" },
        };
    }

    /// <summary>The ARN of an active revision of the definition, registering it when there is none.</summary>
    public async Task<string> EnsureAsync(RegisterJobDefinitionRequest definition, CancellationToken cancellation)
    {
        if (_arns.TryGetValue(definition.JobDefinitionName, out var known))
        {
            return known;
        }

        string? nextToken = null;
        JobDefinition? latest = null;
        do
        {
            var page = await api.DescribeJobDefinitionsAsync(
                new DescribeJobDefinitionsRequest { JobDefinitionName = definition.JobDefinitionName, Status = "ACTIVE", NextToken = nextToken },
                cancellation).ConfigureAwait(false);
            foreach (var found in page.JobDefinitions ?? [])
            {
                if (found.JobDefinitionName == definition.JobDefinitionName && (latest is null || found.Revision > latest.Revision))
                {
                    latest = found;
                }
            }

            nextToken = page.NextToken;
        }
        while (!string.IsNullOrEmpty(nextToken));

        string arn;
        if (latest is not null)
        {
            arn = latest.JobDefinitionArn;
            log.LogDebug("Reusing job definition {JobDefinition}", arn);
        }
        else
        {
            // Two controllers registering the same shape at once make two revisions of identical content: harmless.
            var registered = await api.RegisterJobDefinitionAsync(definition, cancellation).ConfigureAwait(false);
            arn = registered.JobDefinitionArn;
            log.LogInformation("Registered job definition {JobDefinition} revision {Revision}", registered.JobDefinitionName, registered.Revision);
        }

        _arns[definition.JobDefinitionName] = arn;
        return arn;
    }

    /// <summary>Forgets a definition, e.g. after AWS said its revision is no longer active.</summary>
    public void Forget(string name) => _arns.TryRemove(name, out _);
}
