using System.Text.Json;
using k8s;
using k8s.Models;

namespace BatchRunner.Operator.Tests;

/// <summary>Reads what the tests assert on, through the admin's eyes.</summary>
public static class Cluster
{
    public static async Task<JsonElement?> BatchJobAsync(IKubernetes client, string ns, string name)
    {
        try
        {
            var raw = await client.CustomObjects.GetNamespacedCustomObjectAsync("batchrunner.io", "v1alpha1", ns, "batchjobs", name);
            return raw is JsonElement element ? element : JsonSerializer.SerializeToElement(raw);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public static string? Phase(JsonElement? batchJob) => Status(batchJob, "phase")?.GetString();

    public static JsonElement? Status(JsonElement? batchJob, string field) =>
        batchJob is { } b && b.TryGetProperty("status", out var status) && status.TryGetProperty(field, out var value) ? value : null;

    public static JsonElement? Condition(JsonElement? batchJob, string type) =>
        Status(batchJob, "conditions") is { } conditions
            ? conditions.EnumerateArray().Where(c => c.GetProperty("type").GetString() == type).Cast<JsonElement?>().FirstOrDefault()
            : null;

    public static async Task<IList<V1Job>> JobsAsync(IKubernetes client, string ns, string batchJob) =>
        (await client.BatchV1.ListNamespacedJobAsync(ns, labelSelector: $"batchrunner.io/batchjob={batchJob}")).Items;

    public static async Task<IList<V1Pod>> PodsAsync(IKubernetes client, string ns, string batchJob) =>
        (await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: $"batchrunner.io/batchjob={batchJob}")).Items;

    public static async Task<List<Corev1Event>> EventsAsync(IKubernetes client, string ns, string name) =>
        (await client.CoreV1.ListNamespacedEventAsync(ns)).Items.Where(e => e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "BatchJob").ToList();

    public static string BatchJobYaml(string ns, string name, string extraSpec = "", string sweep = "{grid: {rate: [0.5, 0.9], servers: [1, 2, 4]}}") => $"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {"{"}name: {name}, namespace: {ns}{"}"}
        spec:
          image: busybox:1.36
          command: [/bin/sh, -c, 'echo "$BATCHRUNNER_PARAMS"']
          parallelism: 2
          sweep: {sweep}
        {string.Join('\n', extraSpec.Split('\n').Select(l => l.Length == 0 ? l : "  " + l))}
        """;
}
