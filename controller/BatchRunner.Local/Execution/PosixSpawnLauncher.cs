using System.Collections;
using System.Runtime.InteropServices;
using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// The Linux launcher: posix_spawn (vfork and exec), each attempt the leader of a new process group so a timeout or
/// cancel kills its whole tree; standard input is /dev/null; standard output and error are pipes that
/// <see cref="ChildReaper"/>'s one thread drains into log files created on their first byte, on the same epoll set
/// that tells it, through a pidfd, when the child exits. The program, its arguments and the runner's own environment
/// are turned into native strings once per run.
/// (Files the child writes directly would need creating and deleting per attempt; on ext4 without a journal every
/// deleted inode slows the next minute's inode allocations, the attempts' own folders included.)
/// </summary>
public sealed class PosixSpawnLauncher : IProcessLauncher
{
    public static readonly PosixSpawnLauncher Instance = new();

    private static readonly Lazy<bool> Supported = new(Probe);

    private PosixSpawnLauncher()
    {
    }

    /// <summary>Linux (x64 or arm64) with pidfds (5.3+) and posix_spawn_file_actions_addchdir_np (glibc 2.29+ or musl).</summary>
    public static bool IsSupported => Supported.Value;

    public ICommandLauncher Prepare(IReadOnlyList<string> argv, string workingDirectory, TimeProvider time)
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("posix_spawn with pidfds needs Linux 5.3+ on x64 or arm64");
        }

        return new Command(argv, workingDirectory, time);
    }

    private static unsafe bool Probe()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return false;
        }

        try
        {
            var pidFd = LibC.PidFdOpen(Environment.ProcessId);
            if (pidFd < 0)
            {
                return false;
            }

            LibC.Close(pidFd);
            var actions = stackalloc byte[LibC.FileActionsSize];
            _ = LibC.FileActionsInit(actions);
            var root = stackalloc byte[] { (byte)'/', 0 };
            var result = LibC.FileActionsAddChdir(actions, root);
            _ = LibC.FileActionsDestroy(actions);
            return result == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    private sealed class Command : ICommandLauncher
    {
        private readonly string _program;
        private readonly TimeProvider _time;
        // Native memory, owned until Dispose: the program's path, argv (NULL-terminated), the working directory,
        // "/dev/null" and the spawn attributes.
        private readonly nint _path;
        private readonly nint _argv;
        private readonly nint _workingDirectory;
        private readonly nint _devNull;
        private readonly nint _attributes;
        private readonly List<(string Name, nint Entry)> _inherited = [];
        private readonly Lock _gate = new();

        // The inherited entries left once an attempt's own names are taken out; the names are the same every attempt.
        private string[] _overriddenNames = [];
        private nint[] _kept = [];
        private bool _disposed;

        public unsafe Command(IReadOnlyList<string> argv, string workingDirectory, TimeProvider time)
        {
            _program = argv[0];
            _time = time;
            _path = (nint)LibC.Utf8(Resolve(argv[0], workingDirectory));
            var args = (byte**)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(nint));
            for (var i = 0; i < argv.Count; i++)
            {
                args[i] = LibC.Utf8(argv[i]);
            }

            _argv = (nint)args;
            _workingDirectory = (nint)LibC.Utf8(workingDirectory);
            _devNull = (nint)LibC.Utf8("/dev/null");
            foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
            {
                var name = (string)variable.Key;
                _inherited.Add((name, (nint)LibC.Utf8($"{name}={variable.Value}")));
            }

            // A new process group led by the child, default signal handling (the runtime ignores SIGPIPE, which the
            // child would otherwise inherit) and nothing blocked.
            var attributes = NativeMemory.AllocZeroed(LibC.SpawnAttrSize);
            _attributes = (nint)attributes;
            var signals = stackalloc byte[LibC.SigSetSize];
            Check(LibC.SpawnAttrInit(attributes), "posix_spawnattr_init");
            Check(LibC.SpawnAttrSetFlags(attributes, LibC.POSIX_SPAWN_SETPGROUP | LibC.POSIX_SPAWN_SETSIGDEF | LibC.POSIX_SPAWN_SETSIGMASK), "posix_spawnattr_setflags");
            Check(LibC.SpawnAttrSetPGroup(attributes, 0), "posix_spawnattr_setpgroup");
            Check(LibC.SigFillSet(signals), "sigfillset");
            Check(LibC.SpawnAttrSetSigDefault(attributes, signals), "posix_spawnattr_setsigdefault");
            Check(LibC.SigEmptySet(signals), "sigemptyset");
            Check(LibC.SpawnAttrSetSigMask(attributes, signals), "posix_spawnattr_setsigmask");
        }

        public async Task<ProcessResult> RunAsync(AttemptLaunch attempt, CancellationToken cancellation)
        {
            var child = Start(attempt, out var startError);
            if (child is null)
            {
                return new ProcessResult(null, StartFailed: true, false, false, startError, "");
            }

            try
            {
                attempt.Started(child.Pid);
            }
            finally
            {
                // Watched even when recording the start failed, so the child is reaped.
                ChildReaper.Instance.Watch(child);
            }

            var (exit, timedOut, interrupted) = await WaitAsync(child, attempt.Timeout, cancellation).ConfigureAwait(false);
            if ((child.Stdout.Error ?? child.Stderr.Error) is { } logError)
            {
                throw new IOException(logError);
            }

            return exit.Error is not null
                ? new ProcessResult(null, StartFailed: false, timedOut, interrupted, null, exit.Error)
                : new ProcessResult(exit.ExitCode, false, timedOut, interrupted, null, child.Stderr.Tail(), exit.Signal, child.Stragglers);
        }

        /// <summary>Spawns the attempt's process with its stdout and stderr on fresh pipes; null (and why) when it cannot start.</summary>
        private unsafe SpawnedChild? Start(AttemptLaunch attempt, out string? startError)
        {
            startError = null;
            var fds = stackalloc int[4];
            if (LibC.Pipe2(fds, LibC.O_CLOEXEC) != 0)
            {
                throw new IOException($"pipe2: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            if (LibC.Pipe2(fds + 2, LibC.O_CLOEXEC) != 0)
            {
                var error = Marshal.GetLastPInvokeError();
                LibC.Close(fds[0]);
                LibC.Close(fds[1]);
                throw new IOException($"pipe2: {LibC.Describe(error)}");
            }

            int spawnError;
            int pid;
            var outputFolder = attempt.Environment.LastOrDefault(v => v.Key == WorkloadEnvironment.OutputDir).Value;
            try
            {
                (spawnError, pid) = ProcessContainment.Spawning(
                    () => attempt.Isolation is { } isolation
                        ? isolation.Spawn(outputFolder, attempt.Cgroup, () => (Spawn(attempt.Environment, fds[1], fds[3], out var spawned), spawned))
                        : (Spawn(attempt.Environment, fds[1], fds[3], out var spawned), spawned),
                    r => r.Item1 == 0 ? r.Item2 : 0);
            }
            catch (IOException e) when (attempt.Isolation is not null)
            {
                LibC.Close(fds[0]);
                LibC.Close(fds[2]);
                startError = $"cannot isolate the attempt: {e.Message}";
                return null;
            }
            catch
            {
                LibC.Close(fds[0]);
                LibC.Close(fds[2]);
                throw;
            }
            finally
            {
                // The child has its own copies of the write ends (or none): ours would hold the pipes open.
                LibC.Close(fds[1]);
                LibC.Close(fds[3]);
            }

            if (spawnError != 0)
            {
                LibC.Close(fds[0]);
                LibC.Close(fds[2]);
                startError = $"cannot start \"{_program}\": {LibC.Describe(spawnError)}";
                return null;
            }

            return new SpawnedChild(
                pid,
                LibC.PidFdOpen(pid),
                new LogPipe(fds[0], Path.Combine(attempt.LogsFolder, ProcessLauncher.StdoutFile), 0),
                new LogPipe(fds[2], Path.Combine(attempt.LogsFolder, ProcessLauncher.StderrFile), ProcessLauncher.StderrTailBytes),
                outputFolder,
                attempt.Cgroup);
        }

        public unsafe void Dispose()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
            }

            _ = LibC.SpawnAttrDestroy((void*)_attributes);
            NativeMemory.Free((void*)_attributes);
            var args = (byte**)_argv;
            for (var i = 0; args[i] != null; i++)
            {
                NativeMemory.Free(args[i]);
            }

            NativeMemory.Free(args);
            NativeMemory.Free((void*)_path);
            NativeMemory.Free((void*)_workingDirectory);
            NativeMemory.Free((void*)_devNull);
            foreach (var (_, entry) in _inherited)
            {
                NativeMemory.Free((void*)entry);
            }
        }

        private async Task<(ChildExit Exit, bool TimedOut, bool Interrupted)> WaitAsync(SpawnedChild child, TimeSpan? timeout, CancellationToken cancellation)
        {
            if (timeout is null && !cancellation.CanBeCanceled)
            {
                return (await child.Completed.ConfigureAwait(false), false, false);
            }

            // 1 = the timeout killed it, 2 = cancellation did; whichever came first.
            var killedBy = 0;
            using var timeoutSource = timeout is { } limit ? new CancellationTokenSource(limit, _time) : null;
            using var onTimeout = timeoutSource?.Token.UnsafeRegister(_ =>
            {
                if (Interlocked.CompareExchange(ref killedBy, 1, 0) == 0)
                {
                    child.KillTree();
                }
            }, null);
            using var onCancel = cancellation.UnsafeRegister(_ =>
            {
                if (Interlocked.CompareExchange(ref killedBy, 2, 0) == 0)
                {
                    child.KillTree();
                }
            }, null);
            var exit = await child.Completed.ConfigureAwait(false);
            var by = Volatile.Read(ref killedBy);
            return (exit, by == 1, by == 2);
        }

        private unsafe int Spawn(IReadOnlyList<KeyValuePair<string, string>> variables, int stdoutFd, int stderrFd, out int pid)
        {
            var kept = KeptEntries(variables);
            var count = kept.Length + variables.Count;
            var envp = (byte**)NativeMemory.Alloc((nuint)(count + 1), (nuint)sizeof(nint));
            var actions = stackalloc byte[LibC.FileActionsSize];
            var owned = 0;
            Check(LibC.FileActionsInit(actions), "posix_spawn_file_actions_init");
            try
            {
                var n = 0;
                foreach (var entry in kept)
                {
                    envp[n++] = (byte*)entry;
                }

                owned = n;
                for (var i = 0; i < variables.Count; i++)
                {
                    if (!IsOverriddenLater(variables, i))
                    {
                        envp[n++] = LibC.Utf8($"{variables[i].Key}={variables[i].Value}");
                    }
                }

                envp[n] = null;
                Check(LibC.FileActionsAddChdir(actions, (byte*)_workingDirectory), "posix_spawn_file_actions_addchdir_np");
                Check(LibC.FileActionsAddOpen(actions, 0, (byte*)_devNull, LibC.O_RDONLY, 0), "posix_spawn_file_actions_addopen");
                Check(LibC.FileActionsAddDup2(actions, stdoutFd, 1), "posix_spawn_file_actions_adddup2");
                Check(LibC.FileActionsAddDup2(actions, stderrFd, 2), "posix_spawn_file_actions_adddup2");
                return LibC.PosixSpawn(out pid, (byte*)_path, actions, (void*)_attributes, (byte**)_argv, envp);
            }
            finally
            {
                _ = LibC.FileActionsDestroy(actions);
                for (var i = owned; envp[i] != null; i++)
                {
                    NativeMemory.Free(envp[i]);
                }

                NativeMemory.Free(envp);
            }
        }

        private nint[] KeptEntries(IReadOnlyList<KeyValuePair<string, string>> variables)
        {
            lock (_gate)
            {
                var same = _overriddenNames.Length == variables.Count;
                for (var i = 0; same && i < variables.Count; i++)
                {
                    same = string.Equals(_overriddenNames[i], variables[i].Key, StringComparison.Ordinal);
                }

                if (!same)
                {
                    _overriddenNames = [.. variables.Select(v => v.Key)];
                    var names = new HashSet<string>(_overriddenNames, StringComparer.Ordinal);
                    _kept = [.. _inherited.Where(e => !names.Contains(e.Name)).Select(e => e.Entry)];
                }

                return _kept;
            }
        }

        // The same name given twice: the later one wins, as it would in a dictionary.
        private static bool IsOverriddenLater(IReadOnlyList<KeyValuePair<string, string>> variables, int index)
        {
            for (var j = index + 1; j < variables.Count; j++)
            {
                if (string.Equals(variables[j].Key, variables[index].Key, StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>A program with a slash resolves against the working directory; a bare name on the runner's PATH.</summary>
        private static string Resolve(string program, string workingDirectory)
        {
            if (program.Contains('/', StringComparison.Ordinal))
            {
                return Path.GetFullPath(program, workingDirectory);
            }

            foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(folder, program);
                if (File.Exists(candidate))
                {
                    return Path.GetFullPath(candidate, workingDirectory);
                }
            }

            // Not found: every attempt then fails to start with "No such file or directory".
            return Path.GetFullPath(program, workingDirectory);
        }

        private static void Check(int error, string call)
        {
            if (error != 0)
            {
                throw new IOException($"{call}: {LibC.Describe(error)}");
            }
        }
    }
}
