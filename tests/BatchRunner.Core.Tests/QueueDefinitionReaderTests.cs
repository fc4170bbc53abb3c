using System.Text.Json.Nodes;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

public sealed class QueueDefinitionReaderTests
{
    private static (QueueDefinition? Queue, IReadOnlyList<SpecError> Errors) Read(string json, string name = "research") =>
        QueueDefinitionReader.Read(name, JsonNode.Parse(json), $"queues.{name}");

    [Fact]
    public void A_queue_reads_its_backends_quotas_weights_and_half_life()
    {
        var (queue, errors) = Read("""
            {"backends": ["kubernetes", "aws-batch"],
             "quotas": {"kubernetes": {"indexes": 100, "cpu": "64", "memory": "256Gi"}, "aws-batch": {"cpu": 32}},
             "tenants": {"team-a": 2, "team-b": 0.5}, "defaultWeight": 1.5, "usageHalfLifeSeconds": 7200}
            """);

        Assert.Empty(errors);
        Assert.Equal([Backend.Kubernetes, Backend.AwsBatch], queue!.Backends);
        Assert.Equal(new Quota(100, 64_000, 256L << 30), queue.QuotaOf(Backend.Kubernetes));
        Assert.Equal(new Quota(int.MaxValue, 32_000, long.MaxValue), queue.QuotaOf(Backend.AwsBatch));
        Assert.Equal((2, 0.5, 1.5), (queue.WeightOf("team-a"), queue.WeightOf("team-b"), queue.WeightOf("team-c")));
        Assert.Equal(TimeSpan.FromHours(2), queue.UsageHalfLife);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { """{"quotas": {}}""", "queues.research.backends: required: the backends this queue's work may run on" },
        { """{"backends": ["Kubernetes"]}""", "queues.research.backends[0]: must be a backend name, got \"Kubernetes\"" },
        { """{"backends": ["kubernetes"], "quotas": {"aws-batch": {"indexes": 1}}}""", "queues.research.quotas.aws-batch: not one of this queue's backends (kubernetes)" },
        { """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"indexes": -1}}}""", "queues.research.quotas.kubernetes.indexes: must be a whole number of indexes, 0 or more, got -1" },
        { """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"cpu": "lots"}}}""", "queues.research.quotas.kubernetes.cpu: must be a cpu quantity such as 500m or 64, got \"lots\"" },
        { """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"memory": "-1Gi"}}}""", "queues.research.quotas.kubernetes.memory: must be a memory quantity such as 512Mi or 256Gi, got \"-1Gi\"" },
        { """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"gpus": 1}}}""", "queues.research.quotas.kubernetes.gpus: unknown field" },
        { """{"backends": ["kubernetes"], "tenants": {"team-a": "heavy"}}""", "queues.research.tenants.team-a: a weight is a number above 0, got \"heavy\"" },
        { """{"backends": ["kubernetes"], "tenants": {"team-a": 0}}""", "queues.research.tenants.team-a: a weight is a number above 0, got 0" },
        { """{"backends": ["kubernetes"], "priorityClasses": {"urgent": 1.5}}""", "queues.research.priorityClasses.urgent: a priority is a whole number between -1000000000 and 1000000000, got 1.5" },
        { """{"backends": ["kubernetes"], "priorityClasses": {"Urgent": 1}}""", "queues.research.priorityClasses.Urgent: a priority class's name is a DNS label" },
        { """{"backends": ["kubernetes"], "namespaces": "team-a"}""", "queues.research.namespaces: expected a list of namespace names" },
        { """{"backends": ["kubernetes"], "kueueLocalQueue": "Team A"}""", "queues.research.kueueLocalQueue: must be the name of a Kueue LocalQueue, got \"Team A\"" },
        { """{"backends": ["kubernetes"], "namespaces": ["team-a", 3]}""", "queues.research.namespaces[1]: must be a namespace name, got 3" },
        { """{"backends": ["kubernetes"], "defaultWeight": -2}""", "queues.research.defaultWeight: a weight is a number above 0, got -2" },
        { """{"backends": ["kubernetes"], "usageHalfLifeSeconds": 0}""", "queues.research.usageHalfLifeSeconds: must be a number of seconds above 0 and at most 2592000, got 0" },
        { """{"backends": ["kubernetes"], "priority": 1}""", "queues.research.priority: unknown field" },
        { "[]", "queues.research: expected an object with backends and quotas" },
        { """{"backends": ["kubernetes"], "overflow": {"afterSeconds": 60}}""", "queues.research.overflow: overflow needs a second backend to go to; backends lists kubernetes" },
        { """{"backends": ["kubernetes", "aws-batch"], "overflow": {}}""", "queues.research.overflow.afterSeconds: required: how long the next index may wait on a backend before waiting indexes go to the next one (0: as soon as its quota is full)" },
        { """{"backends": ["kubernetes", "aws-batch"], "overflow": {"afterSeconds": -1}}""", "queues.research.overflow.afterSeconds: must be a number of seconds from 0 to 2592000, got -1" },
        { """{"backends": ["kubernetes", "aws-batch"], "overflow": {"afterSeconds": "5m"}}""", "queues.research.overflow.afterSeconds: must be a number of seconds from 0 to 2592000, got \"5m\"" },
        { """{"backends": ["kubernetes", "aws-batch"], "overflow": {"afterSeconds": 1, "to": "aws-batch"}}""", "queues.research.overflow.to: unknown field" },
        { """{"backends": ["kubernetes", "aws-batch"], "overflow": true}""", "queues.research.overflow: expected {afterSeconds: N}" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_bad_queue_is_refused_naming_the_field_and_what_it_must_be(string json, string error)
    {
        var (queue, errors) = Read(json);

        Assert.Null(queue);
        Assert.Contains(error, errors.Select(e => e.ToString()));
    }

    [Fact]
    public void A_queue_adds_its_priority_classes_to_the_built_in_ones_and_may_name_who_uses_it()
    {
        var (queue, errors) = Read("""{"backends": ["local"], "priorityClasses": {"urgent": 1000, "high": 50}, "namespaces": ["team-a"]}""");

        Assert.Empty(errors);
        Assert.Equal(new Dictionary<string, int> { ["low"] = -100, ["normal"] = 0, ["high"] = 50, ["urgent"] = 1000 }, queue!.PriorityClasses);
        Assert.True(queue.Admits("team-a"));
        Assert.False(queue.Admits("team-b"));
        Assert.True(Read("""{"backends": ["local"]}""").Queue!.Admits("anyone"));
        Assert.Equal("research", Read("""{"backends": ["kubernetes"], "kueueLocalQueue": "research"}""").Queue!.KueueLocalQueue);
    }

    [Fact]
    public void An_overflow_rule_sends_waiting_indexes_to_the_next_backend_in_the_queues_order()
    {
        var (queue, errors) = Read("""{"backends": ["local", "kubernetes", "aws-batch"], "overflow": {"afterSeconds": 300}}""");

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromMinutes(5), queue!.Overflow!.After);
        Assert.Equal((Backend.Kubernetes, Backend.AwsBatch, (Backend?)null), (queue.OverflowAfter(Backend.Local), queue.OverflowAfter(Backend.Kubernetes), queue.OverflowAfter(Backend.AwsBatch)));
        Assert.Null(Read("""{"backends": ["local", "kubernetes"]}""").Queue!.OverflowAfter(Backend.Local));
    }

    [Fact]
    public void A_queue_name_is_a_dns_label() =>
        Assert.Equal("queues.Research: a queue's name is a DNS label, got \"Research\"", Read("""{"backends": ["local"]}""", "Research").Errors.Single().ToString());

    [Fact]
    public void The_default_queue_runs_everywhere_without_a_quota_of_its_own()
    {
        var queue = QueueDefinitionReader.Default([Backend.Local, Backend.AwsBatch]);

        Assert.Equal((QueueDefinition.DefaultName, Quota.Unlimited, 1.0), (queue.Name, queue.QuotaOf(Backend.AwsBatch), queue.WeightOf("anyone")));
    }
}
