using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests;

public sealed class TenantGuardTests
{
    private static BatchJob Job(string ns = "default", string backend = "local", string? image = null, string command = "/bin/sh", string extra = "") =>
        BatchJobParser.Parse($"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {"{"}name: j, namespace: {ns}{"}"}
            spec:
              command: ["{command}"]
              backend: {backend}
            {(image is null ? "" : $"  image: {image}")}
            {(extra.Length == 0 ? "" : "  " + extra)}
            """).GetJobOrThrow();

    [Fact]
    public void The_default_allows_only_the_default_namespace_and_no_image_or_command_until_named()
    {
        var guard = new TenantGuard(new TenantGuardOptions());

        Assert.Contains("namespace \"team-a\"", guard.Check(Job(ns: "team-a")), StringComparison.Ordinal);
        Assert.Contains("Tenants:AllowedCommands", guard.Check(Job()), StringComparison.Ordinal);
        Assert.Contains("Tenants:AllowedImages", guard.Check(Job(backend: "kubernetes", image: "busybox")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("default", true)]
    [InlineData("team-a", true)]
    [InlineData("sim-42", true)]
    [InlineData("kube-system", false)]
    [InlineData("team-ab", false)]
    public void Namespaces_are_matched_whole_against_the_allow_list(string ns, bool allowed)
    {
        var guard = new TenantGuard(new TenantGuardOptions { AllowedNamespaces = ["default", "team-a", "sim-*"], AllowedCommands = ["/bin/sh"] });

        Assert.Equal(allowed, guard.Check(Job(ns: ns)) is null);
    }

    [Theory]
    [InlineData("registry.test/sims/mmc:1.2", true)]
    [InlineData("registry.test/sims/mmc@sha256:abc", true)]
    [InlineData("registry.test.evil.example/sims/mmc:1", false)]
    [InlineData("docker.io/registry.test/sims/mmc:1", false)]
    public void Images_for_container_backends_must_match_an_allowed_pattern(string image, bool allowed)
    {
        var guard = new TenantGuard(new TenantGuardOptions { AllowedImages = ["registry.test/sims/*"] });

        Assert.Equal(allowed, guard.Check(Job(backend: "kubernetes", image: image)) is null);
    }

    [Fact]
    public void A_local_job_is_judged_by_its_command_not_its_image()
    {
        var guard = new TenantGuard(new TenantGuardOptions { AllowedCommands = ["dotnet", "/opt/sims/*"] });

        Assert.Null(guard.Check(Job(command: "dotnet", image: "anything/at-all:latest")));
        Assert.Null(guard.Check(Job(command: "/opt/sims/mmc")));
        Assert.NotNull(guard.Check(Job(command: "/bin/sh")));
    }

    [Fact]
    public void Resource_caps_refuse_and_every_reason_is_named_at_once()
    {
        var guard = new TenantGuard(new TenantGuardOptions { AllowedCommands = ["/bin/sh"], MaxCpu = "2", MaxMemory = "4Gi", MaxCompletions = 10, MaxParallelism = 2 });

        var reasons = guard.Check(Job(ns: "other", extra: "resources: {cpu: 2500m, memory: 8Gi}\n  completions: 20\n  parallelism: 3"))!;

        Assert.Equal(
            ["namespace \"other\"", "spec.resources.cpu 2500m", "spec.resources.memory 8Gi", "spec.completions 20", "spec.parallelism 3"],
            reasons.Split("; ").Select(r => string.Join(' ', r.Split(' ').Take(2))));
        Assert.Null(guard.Check(Job(extra: "resources: {cpu: 2, memory: 4Gi}\n  completions: 10\n  parallelism: 2")));
    }

    [Fact]
    public void Options_with_an_invalid_quantity_or_an_empty_pattern_fail_validation()
    {
        var options = new SqsIntakeOptions
        {
            Enabled = true,
            QueueUrl = "http://127.0.0.1:1/q",
            DeadLetterQueueUrl = "http://127.0.0.1:1/dlq",
            Tenants = new TenantGuardOptions { MaxCpu = "lots", AllowedImages = [""] },
        };

        var errors = options.Validate(new(options)).Select(r => r.ErrorMessage).ToList();

        Assert.Contains(errors, e => e!.StartsWith("Tenants:MaxCpu", StringComparison.Ordinal));
        Assert.Contains(errors, e => e!.Contains("AllowedImages has an empty pattern", StringComparison.Ordinal));
    }

    [Fact]
    public void Enabled_options_need_a_queue_and_a_way_to_a_dead_letter_queue()
    {
        var options = new SqsIntakeOptions { Enabled = true, UseRedrivePolicy = false };

        var errors = options.Validate(new(options)).Select(r => r.ErrorMessage).ToList();

        Assert.Contains("give one of QueueUrl and QueueName", errors);
        Assert.Contains(errors, e => e!.StartsWith("refused requests need a dead-letter queue", StringComparison.Ordinal));
        Assert.Empty(new SqsIntakeOptions().Validate(new(new SqsIntakeOptions())));
    }
}
