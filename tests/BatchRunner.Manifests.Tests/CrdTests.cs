using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BatchRunner.Core.Spec;

namespace BatchRunner.Manifests.Tests;

/// <summary>The BatchJob CRD agrees with the parser, which stays the source of truth.</summary>
public class CrdTests
{
    [Fact]
    public void The_crd_names_the_kind_the_parser_reads()
    {
        var crd = Manifests.Crd();
        var spec = crd["spec"]!;
        var version = Assert.Single(spec["versions"]!.AsArray())!;

        Assert.Equal("apiextensions.k8s.io/v1", Manifests.Str(crd["apiVersion"]));
        Assert.Equal($"batchjobs.{BatchJob.Group}", Manifests.Str(crd["metadata"]!["name"]));
        Assert.Equal(BatchJob.Group, Manifests.Str(spec["group"]));
        Assert.Equal("Namespaced", Manifests.Str(spec["scope"]));
        Assert.Equal(BatchJob.KindName, Manifests.Str(spec["names"]!["kind"]));
        Assert.Equal(("batchjobs", "batchjob"), (Manifests.Str(spec["names"]!["plural"]), Manifests.Str(spec["names"]!["singular"])));
        Assert.Equal(["bj"], Manifests.Strings(spec["names"]!["shortNames"]));
        Assert.Equal(["batchrunner"], Manifests.Strings(spec["names"]!["categories"]));
        Assert.Equal(BatchJob.Version, Manifests.Str(version["name"]));
        Assert.True(version["served"]!.GetValue<bool>() && version["storage"]!.GetValue<bool>());
        Assert.NotNull(version["subresources"]?["status"]);
        Assert.Equal(["spec"], Manifests.Strings(Manifests.CrdSchema()["required"]));
    }

    [Fact]
    public void Every_crd_field_has_a_description()
    {
        // metadata is the exception Kubernetes makes: a structural schema may say nothing about it but its type.
        var undescribed = CrdSchema.Walk(Manifests.CrdSchema())
            .Where(n => n.Path != "metadata" && string.IsNullOrWhiteSpace(Manifests.Str(n.Schema["description"])))
            .Select(n => n.Path.Length == 0 ? "<root>" : n.Path)
            .ToList();

        Assert.True(undescribed.Count == 0, "fields without a description: " + string.Join(", ", undescribed));
        Assert.Equal(["type"], Manifests.CrdSchema()["properties"]!["metadata"]!.AsObject().Select(kv => kv.Key));
    }

    [Fact]
    public void The_crd_schema_is_structural_prunes_unknown_fields_and_defaults_only_the_backend()
    {
        foreach (var (path, node) in CrdSchema.Walk(Manifests.CrdSchema()))
        {
            var where = path.Length == 0 ? "<root>" : path;
            var intOrString = CrdSchema.Flag(node, "x-kubernetes-int-or-string");
            var preserve = CrdSchema.Flag(node, "x-kubernetes-preserve-unknown-fields");
            Assert.True(node["type"] is not null || intOrString || preserve, $"{where}: no type");
            // The cluster door's one default: a BatchJob applied without a backend runs on Kubernetes.
            Assert.True(!node.ContainsKey("default") || (path == "spec.backend" && Manifests.Str(node["default"]) == "kubernetes"), $"{where}: the parser's defaults are the only others");
            Assert.False(node.ContainsKey("uniqueItems"), $"{where}: Kubernetes forbids uniqueItems");
            Assert.False(node.ContainsKey("properties") && node.ContainsKey("additionalProperties"), $"{where}: properties and additionalProperties");
            Assert.False(node["type"] is not null && intOrString, $"{where}: int-or-string with a type");
            foreach (var junctor in new[] { "anyOf", "oneOf", "allOf", "not" })
            {
                Assert.False(node.ContainsKey(junctor), $"{where}: {junctor} is not needed here");
            }

            // Unknown fields are preserved only in a backend's own state (its to shape) and in a parameter value, which
            // the parser checks is a scalar.
            if (preserve && path is "status.backendState" or "status.backends[].state")
            {
                Assert.Equal("object", Manifests.Str(node["type"]));
            }
            else if (preserve)
            {
                Assert.Matches(@"^spec\.sweep\.(grid\.\*\[\]|list\[\]\.\*)$", path);
                Assert.Null(node["type"]);
            }

            if (Manifests.Str(node["x-kubernetes-list-type"]) == "map")
            {
                var item = node["items"]!.AsObject();
                Assert.Equal("object", Manifests.Str(item["type"]));
                Assert.All(Manifests.Strings(node["x-kubernetes-list-map-keys"]), key =>
                    Assert.Contains(key, Manifests.Strings(item["required"])));
            }
        }
    }

    [Fact]
    public void The_crd_schema_describes_every_spec_field_the_parser_knows()
    {
        var schema = Manifests.CrdSchema();
        var spec = Manifests.SpecSchema();

        // The parser's own lists of known fields, read where it keeps them.
        Assert.Equal(Sorted(ParserFieldSet("TopLevelFields")), Sorted(PropertyNames(schema)));
        Assert.Equal(Sorted(ParserFieldSet("SpecFields")), Sorted(PropertyNames(spec)));

        // Nested objects: the parser binds each to a model record; every field of the record that a document
        // gives (all but values derived from another field) is a field of the schema, and no other.
        Assert.Equal(Sorted(ModelFields<BatchJobSpec>(nameof(BatchJobSpec.PriorityClass), nameof(BatchJobSpec.ReusesResults))), Sorted(PropertyNames(spec)));
        Assert.Equal(Sorted(ModelFields<ResourceRequests>(nameof(ResourceRequests.MilliCpu), nameof(ResourceRequests.MemoryBytes))),
            Sorted(PropertyNames(spec["properties"]!["resources"]!)));
        Assert.Equal(Sorted(ModelFields<SweepSpec>()), Sorted(PropertyNames(spec["properties"]!["sweep"]!)));
        Assert.Equal(Sorted(ModelFields<RetryPolicy>()), Sorted(PropertyNames(spec["properties"]!["retry"]!)));
        Assert.Equal(Sorted(ModelFields<ResultsSpec>()), Sorted(PropertyNames(spec["properties"]!["results"]!)));
        Assert.Equal(Sorted(ModelFields<EnvVar>()), Sorted(PropertyNames(spec["properties"]!["env"]!["items"]!)));
    }

    [Fact]
    public void Documents_using_every_crd_field_are_accepted_by_the_parser()
    {
        // Grid and list exclude each other, so two documents between them touch every field of the schema.
        var withGrid = Documents.Job(JsonNode.Parse("""
            {
              "image": "batchrunner/mmc-queue:latest", "command": ["dotnet", "mmc.dll"], "args": ["--fast", "5"],
              "env": [{"name": "LOG_LEVEL", "value": "debug"}], "resources": {"cpu": "500m", "memory": "1Gi"},
              "completions": 6, "parallelism": 2,
              "sweep": {"grid": {"servers": [1, 2, 4], "discipline": ["fifo", "lifo"]}, "repeats": 1, "seed": 7},
              "retry": {"attempts": 3, "backoffSeconds": 1.5, "maxBackoffSeconds": 60},
              "timeoutSeconds": 120, "deadlineSeconds": 1800.5, "backend": "kubernetes", "queue": "research", "priority": 100, "reuse": false,
              "budget": {"usd": 12.5}, "results": {"uri": "s3://bucket/prefix", "format": "csv"}
            }
            """)!.AsObject());
        var withList = Documents.Job(JsonNode.Parse("""
            {"sweep": {"list": [{"servers": 1, "fast": true}, {"servers": 2, "fast": false}], "repeats": 2}}
            """)!.AsObject());

        var touched = new HashSet<string>(StringComparer.Ordinal);
        foreach (var document in new[] { withGrid, withList })
        {
            var parsed = Documents.Parse(document);
            Assert.True(parsed.IsValid, Documents.Errors(parsed));
            var crdErrors = Documents.CrdErrors(document);
            Assert.True(crdErrors.Count == 0, CrdSchema.Describe(crdErrors));
            Touch(document["spec"], Manifests.SpecSchema(), "", touched);
        }

        var all = CrdSchema.Walk(Manifests.SpecSchema()).Select(n => n.Path).ToHashSet(StringComparer.Ordinal);
        Assert.Empty(all.Except(touched).Order(StringComparer.Ordinal));
    }

    public static TheoryData<string> ObjectsOfTheSpec() =>
        new(CrdSchema.Walk(Manifests.SpecSchema())
            .Where(n => Manifests.Str(n.Schema["type"]) == "object" && n.Schema["properties"] is not null)
            .Select(n => n.Path));

    [Theory]
    [MemberData(nameof(ObjectsOfTheSpec))]
    public void An_unknown_field_is_rejected_by_the_parser_and_pruned_by_the_crd(string objectPath)
    {
        var document = Documents.Job(JsonNode.Parse("""
            {"env": [{"name": "A", "value": "1"}], "resources": {}, "sweep": {"grid": {"x": [1]}}, "retry": {}, "results": {}, "budget": {"usd": 1}}
            """)!.AsObject());
        var target = objectPath switch
        {
            "" => document["spec"]!,
            "env[]" => document["spec"]!["env"]![0]!,
            _ => document["spec"]![objectPath]!,
        };
        target["colour"] = "red";
        var expectedPath = "spec" + (objectPath.Length == 0 ? "" : "." + objectPath.Replace("[]", "[0]", StringComparison.Ordinal)) + ".colour";

        Assert.Contains($"{expectedPath}: unknown field", Documents.Parse(document).Errors.Select(e => e.ToString()));
        Assert.Contains($"{expectedPath}: unknown field (pruned)", Documents.CrdErrors(document));
    }

    [Fact]
    public void The_crd_enums_match_the_parser()
    {
        var spec = Manifests.SpecSchema();
        var formats = Manifests.Strings(spec["properties"]!["results"]!["properties"]!["format"]!["enum"]).ToList();

        // Each name the CRD allows is read by the parser as a distinct value of its enum, and every value has a name.
        var parsedFormats = formats.Select(f => Valid(Documents.JobWith("results", $$"""{"format": "{{f}}"}""")).Spec.Results.Format).ToList();
        Assert.Equal(Enum.GetValues<ResultsFormat>().Order(), parsedFormats.Distinct().Order());
        Assert.Equal(formats.Count, parsedFormats.Distinct().Count());

        // And the parser's own error message names the same list, in the same order.
        Assert.Equal(formats, AllowedInMessage(Documents.JobWith("results", """{"format": "parquet"}"""), "spec.results.format"));
    }

    [Theory]
    [InlineData("local", true)]
    [InlineData("aws-batch", true)]
    [InlineData("slurm", true)]
    [InlineData("gpu-pool-2", true)]
    [InlineData("Local", false)]
    [InlineData("aws_batch", false)]
    [InlineData("local-", false)]
    [InlineData("9lives", false)]
    [InlineData("", false)]
    public void The_crd_takes_the_backend_names_the_parser_takes(string name, bool wellFormed)
    {
        // Which backends exist is the controller's to say (its registry), so the CRD checks the form only: a backend
        // registered later needs no new CRD, and a name no controller has is refused by the controller, naming spec.backend.
        var document = Documents.JobWith("backend", $"\"{name}\"");
        Assert.Equal(wellFormed, !Documents.CrdErrors(document).Any(e => e.Contains("spec.backend", StringComparison.Ordinal)));
        Assert.Equal(wellFormed, !Documents.Parse(document).Errors.Any(e => e.Path == "spec.backend"));
    }

    [Fact]
    public void The_crd_bounds_are_the_parser_limits()
    {
        var spec = Manifests.SpecSchema();
        double Bound(string path, string key) => Navigate(spec, path)[key]!.GetValue<double>();
        void Range(string path, int min, int max)
        {
            Assert.Equal(min, Bound(path, "minimum"));
            Assert.Equal(max, Bound(path, "maximum"));
        }

        Range("completions", 1, SpecLimits.MaxIndexes);
        Range("parallelism", 1, SpecLimits.MaxParallelism);
        Range("sweep.repeats", 1, SpecLimits.MaxRepeats);
        Range("retry.attempts", 1, SpecLimits.MaxAttempts);
        Assert.Equal(SpecLimits.MaxParameters, Bound("sweep.grid", "maxProperties"));
        Assert.Equal(0, Bound("sweep.seed", "minimum"));
        Assert.Equal("int64", Manifests.Str(Navigate(spec, "sweep.seed")["format"]));
        foreach (var seconds in new[] { "timeoutSeconds", "deadlineSeconds" })
        {
            Assert.Equal(0, Bound(seconds, "minimum"));
            Assert.True(CrdSchema.Flag(Navigate(spec, seconds), "exclusiveMinimum"), seconds);
        }

        foreach (var seconds in new[] { "timeoutSeconds", "deadlineSeconds", "retry.backoffSeconds", "retry.maxBackoffSeconds" })
        {
            Assert.Equal(SpecLimits.MaxSeconds, Bound(seconds, "maximum"));
        }
    }

    public static TheoryData<string, string, bool> SingleFieldValues()
    {
        var data = new TheoryData<string, string, bool>
        {
            { "image", "\"batchrunner/mmc-queue:latest\"", true }, { "image", "\"a b\"", false }, { "image", "\"\"", false },
            { "command", """["dotnet", "x.dll"]""", true }, { "command", """["dotnet", 5]""", false },
            { "command", "[]", false }, { "command", "null", false },
            { "args", """["--n", "5"]""", true }, { "args", """["--n", 5]""", false }, { "args", "\"--n\"", false },
            { "env", """[{"name": "LOG_LEVEL", "value": "debug"}, {"name": "_X"}]""", true },
            { "env", """[{"name": "1X", "value": "a"}]""", false }, { "env", """[{"value": "a"}]""", false },
            { "env", """[{"name": "A", "value": 5}]""", false }, { "env", """[{"name": "A"}, {"name": "A"}]""", false },
            { "resources", """{"cpu": "500m", "memory": "512Mi"}""", true }, { "resources", """{"cpu": 2, "memory": "1.5Gi"}""", true },
            { "resources", """{"cpu": "0.25"}""", true }, { "resources", """{"cpu": "abc"}""", false },
            { "resources", """{"cpu": "1 "}""", false }, { "resources", """{"cpu": true}""", false },
            { "resources", """{"memory": ["1Gi"]}""", false },
            { "completions", "0", false }, { "completions", "1", true }, { "completions", $"{SpecLimits.MaxIndexes}", true },
            { "completions", $"{SpecLimits.MaxIndexes + 1}", false }, { "completions", "2.5", false }, { "completions", "\"3\"", false },
            { "parallelism", "0", false }, { "parallelism", "1", true }, { "parallelism", $"{SpecLimits.MaxParallelism + 1}", false },
            { "sweep", """{"grid": {"x": [1]}, "repeats": 0}""", false }, { "sweep", """{"grid": {"x": [1]}, "repeats": 1}""", true },
            { "sweep", $$"""{"grid": {"x": [1]}, "repeats": {{SpecLimits.MaxRepeats}}}""", true },
            { "sweep", $$"""{"grid": {"x": [1]}, "repeats": {{SpecLimits.MaxRepeats + 1}}}""", false },
            { "sweep", """{"grid": {"x": [1]}, "seed": -1}""", false }, { "sweep", """{"grid": {"x": [1]}, "seed": 0}""", true },
            { "sweep", $$"""{"grid": {"x": [1]}, "seed": {{long.MaxValue}}}""", true },
            { "sweep", """{"grid": {"x": [1]}, "seed": 1.5}""", false },
            { "sweep", """{"grid": {}}""", false }, { "sweep", """{"grid": {"x": []}}""", false }, { "sweep", """{"grid": {"x": 1}}""", false },
            { "sweep", """{"grid": {"x": [1, 0.5, "fifo", true]}}""", true },
            { "sweep", """{"list": []}""", false }, { "sweep", """{"list": [{}]}""", false }, { "sweep", """{"list": [1]}""", false },
            { "sweep", """{"list": [{"x": 1, "y": "a"}, {"x": 2.5, "y": false}]}""", true },
            { "retry", """{"attempts": 0}""", false }, { "retry", """{"attempts": 1}""", true },
            { "retry", $$"""{"attempts": {{SpecLimits.MaxAttempts}}}""", true }, { "retry", $$"""{"attempts": {{SpecLimits.MaxAttempts + 1}}}""", false },
            { "retry", """{"backoffSeconds": -1}""", false }, { "retry", """{"backoffSeconds": 0, "maxBackoffSeconds": 0}""", true },
            { "retry", """{"maxBackoffSeconds": -0.5}""", false }, { "retry", """{"backoffSeconds": "1"}""", false },
            { "timeoutSeconds", "0", false }, { "timeoutSeconds", "-1", false }, { "timeoutSeconds", "0.001", true },
            { "timeoutSeconds", "120", true }, { "timeoutSeconds", "\"10\"", false },
            { "deadlineSeconds", "0", false }, { "deadlineSeconds", "1800.5", true },
            { "backend", "\"local\"", true }, { "backend", "\"kubernetes\"", true }, { "backend", "\"aws-batch\"", true },
            { "queue", "\"research\"", true }, { "queue", "\"Research\"", false }, { "queue", "\"-x\"", false }, { "queue", "5", false },
            { "priority", "100", true }, { "priority", "-1000000000", true }, { "priority", "1000000001", false }, { "priority", "1.5", false }, { "priority", "\"high\"", true }, { "priority", "\"High\"", false },
            { "backend", "\"Kubernetes\"", false }, { "backend", "\"gpu_pool\"", false },
            { "results", """{"uri": "s3://bucket/prefix", "format": "jsonl"}""", true }, { "results", """{"uri": "file:///tmp/r"}""", true },
            { "results", """{"uri": "http://host/r"}""", false }, { "results", """{"format": "csv"}""", true },
            { "results", """{"format": "parquet"}""", false },
        };

        var tooMany = new JsonObject();
        for (var i = 0; i <= SpecLimits.MaxParameters; i++)
        {
            tooMany[$"p{i}"] = new JsonArray(1);
        }

        data.Add("sweep", new JsonObject { ["grid"] = tooMany }.ToJsonString(), false);
        return data;
    }

    /// <summary>On a value of one field alone, the API server (through the schema) and the parser decide alike.</summary>
    [Theory]
    [MemberData(nameof(SingleFieldValues))]
    public void The_crd_schema_and_the_parser_agree_on_single_field_values(string field, string json, bool valid)
    {
        var document = Documents.JobWith(field, json);
        var parsed = Documents.Parse(document);
        var crdErrors = Documents.CrdErrors(document);

        Assert.True(valid == parsed.IsValid, $"parser on spec.{field} = {json}: {Documents.Errors(parsed)}");
        Assert.True(valid == (crdErrors.Count == 0), $"CRD schema on spec.{field} = {json}: {CrdSchema.Describe(crdErrors)}");
    }

    [Fact]
    public void The_printer_columns_show_fields_of_the_schema()
    {
        var version = Manifests.Crd()["spec"]!["versions"]![0]!;
        var columns = version["additionalPrinterColumns"]!.AsArray().Select(c => c!.AsObject()).ToList();

        Assert.Equal(["Phase", "Succeeded", "Failed", "Total", "Backend", "Queue", "Admitted", "Position", "ETA", "Age"], columns.Select(c => Manifests.Str(c["name"])));
        foreach (var column in columns.Where(c => Manifests.Str(c["name"]) != "Age"))
        {
            var path = Manifests.Str(column["jsonPath"])!.TrimStart('.');
            var field = Navigate(Manifests.CrdSchema(), path);
            Assert.Equal(Manifests.Str(field["type"]), Manifests.Str(column["type"]));
        }

        var age = columns.Single(c => Manifests.Str(c["name"]) == "Age");
        Assert.Equal((".metadata.creationTimestamp", "date"), (Manifests.Str(age["jsonPath"]), Manifests.Str(age["type"])));
        Assert.Equal(["Pending", "Running", "Succeeded", "Failed", "Cancelled"],
            Manifests.Strings(Navigate(Manifests.CrdSchema(), "status.phase")["enum"]));
        Assert.Equal(["type"], Manifests.Strings(Navigate(Manifests.CrdSchema(), "status.conditions")["x-kubernetes-list-map-keys"]));
    }

    // ---- helpers ------------------------------------------------------------------------------------------

    private static BatchJob Valid(JsonObject document)
    {
        var result = Documents.Parse(document);
        Assert.True(result.IsValid, Documents.Errors(result));
        return result.Job!;
    }

    private static List<string> AllowedInMessage(JsonObject document, string path)
    {
        var error = Assert.Single(Documents.Parse(document).Errors, e => e.Path == path);
        var match = Regex.Match(error.Message, "^must be one of (?<names>[^;]+);");
        Assert.True(match.Success, error.Message);
        return match.Groups["names"].Value.Split(", ").ToList();
    }

    /// <summary>A schema node by dotted path below <paramref name="schema"/> (properties only).</summary>
    private static JsonObject Navigate(JsonObject schema, string path) =>
        path.Split('.').Aggregate(schema, (node, name) => node["properties"]![name]!.AsObject());

    private static IEnumerable<string> PropertyNames(JsonNode schema) => schema["properties"]!.AsObject().Select(kv => kv.Key);

    private static List<string> Sorted(IEnumerable<string> names) => names.Order(StringComparer.Ordinal).ToList();

    private static HashSet<string> ParserFieldSet(string name)
    {
        var field = typeof(BatchJobParser).GetField(name, BindingFlags.NonPublic | BindingFlags.Static);
        Assert.True(field is not null, $"BatchJobParser.{name} is gone: update this test to read the parser's known fields");
        return Assert.IsType<HashSet<string>>(field.GetValue(null));
    }

    /// <summary>The public instance properties of a model record, camelCased as in a document.</summary>
    private static IEnumerable<string> ModelFields<T>(params string[] derived) =>
        typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => p.Name)
            .Except(derived)
            .Select(n => char.ToLowerInvariant(n[0]) + n[1..]);

    /// <summary>Records every schema path a document's values reach (x.y, x[], x.*).</summary>
    private static void Touch(JsonNode? value, JsonObject schema, string path, HashSet<string> touched)
    {
        touched.Add(path);
        switch (value)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj)
                {
                    if (schema["properties"]?[key] is JsonObject property)
                    {
                        Touch(child, property, CrdSchema.Join(path, key), touched);
                    }
                    else if (schema["additionalProperties"] is JsonObject additional)
                    {
                        Touch(child, additional, CrdSchema.Join(path, "*"), touched);
                    }
                }

                break;
            case JsonArray array when schema["items"] is JsonObject items:
                foreach (var item in array)
                {
                    Touch(item, items, path + "[]", touched);
                }

                break;
        }
    }
}
