using BatchRunner.Controller.Hosting;
using Serilog;

Log.Logger = new LoggerConfiguration().WriteTo.Console().CreateBootstrapLogger();
// The controller starts no children but local attempts': it may collect every process they leave behind.
BatchRunner.Local.Execution.ProcessContainment.Enable();
try
{
    var builder = WebApplication.CreateSlimBuilder(args);
    builder.AddBatchRunnerController();
    var app = builder.Build();
    app.MapControllerEndpoints();
    await app.RunAsync().ConfigureAwait(false);
    return Environment.ExitCode;
}
catch (Exception e) when (e is Microsoft.Extensions.Options.OptionsValidationException or k8s.Exceptions.KubeConfigException)
{
    // A configuration mistake: the message says what is wrong; a stack trace would only bury it.
    Log.Fatal("The controller cannot start: {Message}", e.Message);
    return 2;
}
catch (Exception e) when (e is not OperationCanceledException)
{
    Log.Fatal(e, "The controller stopped: {Message}", e.Message);
    return 1;
}
finally
{
    await Log.CloseAndFlushAsync().ConfigureAwait(false);
}
