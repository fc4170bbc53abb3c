using System.Text.Json;
using BatchRunner.Core.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Store;

/// <summary>
/// Reads back a dispatched spec: the resolved model as <see cref="Runs.RunIdentity.SpecJson"/> writes it (the plan
/// ConfigMap's <c>spec.json</c>, a run's <c>_spec.json</c>), or a BatchJob document as a user writes it. Reading the
/// resolved form needs no defaults or validation, so the wrapper in a pod derives the same run id, parameters and
/// seeds as the controller that dispatched it.
/// </summary>
public static class StoredSpec
{
    /// <exception cref="InvalidSpecException">The text is neither form, naming what is wrong.</exception>
    public static BatchJob Parse(string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            // Not JSON: a YAML document, as a user writes it.
            return BatchJobParser.Parse(text).GetJobOrThrow();
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Spec", out _))
            {
                return BatchJobParser.Parse(text).GetJobOrThrow();
            }

            try
            {
                // The serializer that wrote it reads it (source-generated): no field is read by hand.
                return root.Deserialize(StoredSpecJson.Default.BatchJob) ?? throw new JsonException("null");
            }
            catch (JsonException e)
            {
                throw new InvalidSpecException([new SpecError("", $"stored spec is not in the form BatchRunner writes: {e.Message}")]);
            }
        }
    }
}
