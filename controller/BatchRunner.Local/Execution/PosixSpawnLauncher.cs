using System.Collections;
using System.Runtime.InteropServices;
using System.Text;

namespace BatchRunner.Local.Execution;

/// <summary>
/// The Linux launcher: posix_spawn (vfork and exec, no pipes), each attempt the leader of a new process group so a
/// timeout or cancel kills its whole tree; standard input is /dev/null and standard output and error go straight to
/// files the runner opened (anonymous until the process has written something, then linked into the logs folder);
/// the exit comes through a pidfd on <see cref="ChildReaper"/>'s thread. The program, its arguments and the
/// runner's own environment are turned into native strings once per run.
/// </summary>
public sealed class PosixSpawnLauncher : IProcessLauncher
{
    public static readonly PosixSpawnLauncher Instance = new();

    private static readonly Lazy<bool> Supported = new(Probe);

    // Some file systems cannot make anonymous files; then the logs are opened by name and removed when empty.
    private static volatile bool _noTmpFile;

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
            var attemptFolder = Path.GetDirectoryName(attempt.LogsFolder)!;
            var stdout = LogFile.Open(attemptFolder, attempt.LogsFolder, ProcessLauncher.StdoutFile);
            LogFile stderr;
            try
            {
                stderr = LogFile.Open(attemptFolder, attempt.LogsFolder, ProcessLauncher.StderrFile);
            }
            catch
            {
                stdout.Discard();
                throw;
            }

            SpawnedChild child;
            try
            {
                var error = Spawn(attempt.Environment, stdout.Fd, stderr.Fd, out var pid);
                if (error != 0)
                {
                    stdout.Discard();
                    stderr.Discard();
                    return new ProcessResult(null, StartFailed: true, false, false, $"cannot start \"{_program}\": {LibC.Describe(error)}", "");
                }

                child = new SpawnedChild(pid, LibC.PidFdOpen(pid));
            }
            catch
            {
                stdout.Discard();
                stderr.Discard();
                throw;
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

            string tail;
            try
            {
                stdout.Keep();
            }
            finally
            {
                tail = stderr.Keep(ProcessLauncher.StderrTailBytes);
            }

            if (exit.Error is not null)
            {
                return new ProcessResult(null, StartFailed: false, timedOut, interrupted, null, exit.Error);
            }

            return new ProcessResult(exit.ExitCode, false, timedOut, interrupted, null, tail, exit.Signal);
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
                return (await child.Exited.ConfigureAwait(false), false, false);
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
            var exit = await child.Exited.ConfigureAwait(false);
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

    /// <summary>
    /// A log file the child writes through its own descriptor: anonymous (O_TMPFILE in the attempt's folder) until the
    /// process has exited, then linked into the logs folder if it is not empty, so an empty log leaves no file.
    /// </summary>
    private readonly struct LogFile
    {
        private readonly string _finalPath;
        private readonly bool _named;

        private LogFile(int fd, string finalPath, bool named)
        {
            Fd = fd;
            _finalPath = finalPath;
            _named = named;
        }

        public int Fd { get; }

        public static unsafe LogFile Open(string attemptFolder, string logsFolder, string fileName)
        {
            var finalPath = Path.Combine(logsFolder, fileName);
            if (!_noTmpFile)
            {
                var folder = LibC.Utf8(attemptFolder);
                try
                {
                    var fd = LibC.Open(folder, LibC.O_TMPFILE | LibC.O_RDWR | LibC.O_CLOEXEC, 0x1a4 /* 0644 */);
                    if (fd >= 0)
                    {
                        return new LogFile(fd, finalPath, named: false);
                    }

                    var error = Marshal.GetLastPInvokeError();
                    if (error is not (95 /* EOPNOTSUPP */ or 21 /* EISDIR */ or 22 /* EINVAL */))
                    {
                        throw new IOException($"cannot open a log file in {attemptFolder}: {LibC.Describe(error)}");
                    }

                    _noTmpFile = true;
                }
                finally
                {
                    NativeMemory.Free(folder);
                }
            }

            Directory.CreateDirectory(logsFolder);
            var path = LibC.Utf8(finalPath);
            try
            {
                var fd = LibC.Open(path, LibC.O_CREAT | LibC.O_TRUNC | LibC.O_RDWR | LibC.O_CLOEXEC, 0x1a4);
                return fd >= 0
                    ? new LogFile(fd, finalPath, named: true)
                    : throw new IOException($"cannot open {finalPath}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }
            finally
            {
                NativeMemory.Free(path);
            }
        }

        /// <summary>Closes the file without keeping it (the process never started).</summary>
        public void Discard()
        {
            LibC.Close(Fd);
            if (_named)
            {
                File.Delete(_finalPath);
                DeleteFolderIfEmpty();
            }
        }

        /// <summary>Keeps the file if the process wrote to it; returns its last <paramref name="tailBytes"/> bytes as text.</summary>
        public unsafe string Keep(int tailBytes = 0)
        {
            try
            {
                var size = LibC.LSeek(Fd, 0, LibC.SEEK_END);
                if (size <= 0)
                {
                    if (_named)
                    {
                        File.Delete(_finalPath);
                        DeleteFolderIfEmpty();
                    }

                    return "";
                }

                if (!_named)
                {
                    Link();
                }

                if (tailBytes == 0)
                {
                    return "";
                }

                var length = (int)Math.Min(size, tailBytes);
                var buffer = stackalloc byte[length];
                var read = LibC.PRead(Fd, buffer, (nuint)length, size - length);
                return read > 0 ? Encoding.UTF8.GetString(buffer, (int)read) : "";
            }
            finally
            {
                LibC.Close(Fd);
            }
        }

        private unsafe void Link()
        {
            var folder = LibC.Utf8(Path.GetDirectoryName(_finalPath)!);
            var source = LibC.Utf8($"/proc/self/fd/{Fd}");
            var target = LibC.Utf8(_finalPath);
            try
            {
                if (LibC.MkDir(folder, 0x1ed /* 0755 */) != 0 && Marshal.GetLastPInvokeError() != LibC.EEXIST)
                {
                    throw new IOException($"cannot create {_finalPath}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
                }

                if (LibC.LinkAt(LibC.AT_FDCWD, source, LibC.AT_FDCWD, target, LibC.AT_SYMLINK_FOLLOW) != 0)
                {
                    throw new IOException($"cannot create {_finalPath}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
                }
            }
            finally
            {
                NativeMemory.Free(folder);
                NativeMemory.Free(source);
                NativeMemory.Free(target);
            }
        }

        private void DeleteFolderIfEmpty()
        {
            var folder = Path.GetDirectoryName(_finalPath)!;
            if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                try
                {
                    Directory.Delete(folder);
                }
                catch (IOException)
                {
                    // The other log file was just kept there.
                }
            }
        }
    }
}
