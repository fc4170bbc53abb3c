using BatchRunner.Cli;
using BatchRunner.Local.Execution;

// This process starts no children but its attempts': it may collect every process they leave behind.
ProcessContainment.Enable();
return await CliApplication.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
