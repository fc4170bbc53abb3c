using BatchRunner.Workloads.MmcQueue;

namespace BatchRunner.Workloads.Tests;

public class MmcQueueProgramTests
{
    private const string ValidParameters = """{"arrival_rate":0.9,"service_rate":1.0,"servers":2,"customers":5000}""";

    [Fact]
    public void Writes_one_row_with_the_result_columns_and_no_parameter_names()
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, ValidParameters);

        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("", outcome.Error);
        var row = outcome.SingleRow();
        Assert.Equal(
            ["customers_measured", "erlang_c_mean_wait", "erlang_c_p_wait", "mean_time_in_system", "mean_wait", "p_wait", "utilisation"],
            row.EnumerateObject().Select(column => column.Name).Order(StringComparer.Ordinal));
        Assert.Equal(5000, row.GetProperty("customers_measured").GetInt64());
        Assert.Equal(ErlangC.MeanWait(0.9, 1.0, 2), row.GetProperty("erlang_c_mean_wait").GetDouble());
    }

    [Fact]
    public void Same_seed_gives_identical_output()
    {
        var first = WorkloadHarness.RunInProcess(Program.Run, ValidParameters, seed: 42);
        var second = WorkloadHarness.RunInProcess(Program.Run, ValidParameters, seed: 42);
        var otherSeed = WorkloadHarness.RunInProcess(Program.Run, ValidParameters, seed: 43);

        Assert.NotNull(first.Results);
        Assert.Equal(first.Results, second.Results);
        Assert.NotEqual(first.Results, otherSeed.Results);
    }

    [Theory]
    [InlineData("arrival_rate", """{"service_rate":1.0,"servers":2}""")]
    [InlineData("service_rate", """{"arrival_rate":0.9,"servers":2}""")]
    [InlineData("servers", """{"arrival_rate":0.9,"service_rate":1.0}""")]
    public void Missing_parameter_exits_2_naming_it(string parameter, string parametersJson)
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, parametersJson);

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"'{parameter}'", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("missing", outcome.Error, StringComparison.Ordinal);
        Assert.Null(outcome.Results);
    }

    [Theory]
    [InlineData("servers", """{"arrival_rate":0.9,"service_rate":1.0,"servers":"two"}""")]
    [InlineData("servers", """{"arrival_rate":0.9,"service_rate":1.0,"servers":1.5}""")]
    [InlineData("arrival_rate", """{"arrival_rate":-1,"service_rate":1.0,"servers":2}""")]
    [InlineData("service_rate", """{"arrival_rate":0.9,"service_rate":true,"servers":2}""")]
    [InlineData("customers", """{"arrival_rate":0.9,"service_rate":1.0,"servers":2,"customers":0}""")]
    [InlineData("warmup", """{"arrival_rate":0.9,"service_rate":1.0,"servers":2,"warmup":-5}""")]
    public void Invalid_parameter_exits_2_naming_it(string parameter, string parametersJson)
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, parametersJson);

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"'{parameter}'", outcome.Error, StringComparison.Ordinal);
        Assert.Null(outcome.Results);
    }

    [Fact]
    public void Unstable_queue_exits_2_explaining_rho()
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, """{"arrival_rate":2.0,"service_rate":1.0,"servers":2}""");

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("unstable", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("must be below 1", outcome.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[1,2]")]
    public void Malformed_parameter_json_exits_2_naming_the_variable(string parametersJson)
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, parametersJson);

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("BATCHRUNNER_PARAMS", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Integral_floats_and_numeric_strings_are_accepted_and_unknown_parameters_are_warned_about()
    {
        var outcome = WorkloadHarness.RunInProcess(
            Program.Run, """{"arrival_rate":"0.9","service_rate":1,"servers":2.0,"customers":5e3,"replicate":3}""");

        Assert.Equal(0, outcome.ExitCode);
        Assert.Contains("unknown parameter 'replicate'", outcome.Error, StringComparison.Ordinal);
        Assert.Equal(5000, outcome.SingleRow().GetProperty("customers_measured").GetInt64());
    }

    [Fact]
    public void Built_program_exits_2_naming_a_missing_parameter()
    {
        var outcome = WorkloadHarness.RunBuiltProgram(typeof(Program).Assembly.Location, """{"arrival_rate":0.9,"servers":2}""");

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("'service_rate'", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Built_program_writes_results_to_the_current_directory_when_no_output_dir_is_set()
    {
        var outcome = WorkloadHarness.RunBuiltProgram(typeof(Program).Assembly.Location, ValidParameters, seed: 42);
        var inProcess = WorkloadHarness.RunInProcess(Program.Run, ValidParameters, seed: 42);

        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(inProcess.Results, outcome.Results);
    }
}
