using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>How a child ended: its exit code, or the signal that killed it, or why its status could not be read.</summary>
internal readonly record struct ChildExit(int? ExitCode, int? Signal, string? Error);

/// <summary>A file descriptor the reaper thread waits on.</summary>
internal interface IReaperWatch
{
    int Fd { get; }

    /// <summary>Handles readiness on the reaper thread, with its scratch buffer; true when done with the descriptor.</summary>
    unsafe bool OnReady(byte* buffer, int size);

    /// <summary>Called once the descriptor is out of the epoll set: closes it.</summary>
    void Close();
}

/// <summary>
/// A child the posix_spawn launcher started, the leader of its own process group. <see cref="Completed"/> is set
/// once it has been reaped and both of its output pipes have reached end-of-file (or were given up on).
/// </summary>
internal sealed class SpawnedChild : IReaperWatch
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ChildExit> _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _pidFd;
    private int _partsLeft;
    private bool _reaped;
    private ChildExit _exit;

    public SpawnedChild(int pid, int pidFd, LogPipe stdout, LogPipe stderr, string? outputDir = null, string? cgroup = null)
    {
        Pid = pid;
        OutputDir = outputDir;
        Cgroup = cgroup;
        _pidFd = pidFd;
        Stdout = stdout;
        Stderr = stderr;
        _partsLeft = 3;
        stdout.Finished = PartDone;
        stderr.Finished = PartDone;
    }

    public int Pid { get; }

    /// <summary>The attempt's output folder: processes whose environment names it are the attempt's.</summary>
    public string? OutputDir { get; }

    /// <summary>The attempt's freezer cgroup, when it has one: every process of the attempt is in it.</summary>
    public string? Cgroup { get; }

    /// <summary>How many processes the attempt left running when it ended (killed then), once reaped.</summary>
    public int Stragglers { get; private set; }

    public LogPipe Stdout { get; }

    public LogPipe Stderr { get; }

    public Task<ChildExit> Completed => _completed.Task;

    int IReaperWatch.Fd => _pidFd;

    /// <summary>
    /// Kills the child's process group and any descendant that left it. Under the same lock as the reaping, so the
    /// pid is still this child's (alive or a zombie) and never a stranger's that reused it. After the reaping only
    /// the group is left to kill (members holding its pipes); then the pipes are given up on shortly after.
    /// </summary>
    public void KillTree()
    {
        lock (_gate)
        {
            if (Cgroup is not null)
            {
                // The cgroup holds every descendant, however it detached: no walk of the process tree is needed.
                FreezerCgroups.KillAll(Cgroup, except: Pid);
            }
            else if (!_reaped)
            {
                // Descendants that started a group or session of their own are found by their parent links first.
                try
                {
                    using var process = Process.GetProcessById(Pid);
                    ProcessLauncher.KillTree(process);
                }
                catch (ArgumentException)
                {
                    // Already gone from /proc.
                }
            }

            LibC.Kill(-Pid, LibC.SIGKILL);
        }

        // Something outside the group may hold the pipes open: do not wait on them for ever.
        _ = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => GiveUpOnPipes(), TaskScheduler.Default);
    }

    unsafe bool IReaperWatch.OnReady(byte* buffer, int size)
    {
        Reap(closePidFd: false);
        return true;
    }

    void IReaperWatch.Close() => LibC.Close(_pidFd);

    /// <summary>Reaps the child by its own pid (it has exited, or is about to).</summary>
    internal unsafe void Reap(bool closePidFd)
    {
        // Wait for the exit without reaping (the pidfd path has seen it already; outside the lock, which KillTree takes).
        var info = stackalloc byte[LibC.SigInfoSize];
        while (LibC.WaitId(LibC.P_PID, Pid, info, LibC.WEXITED | LibC.WNOWAIT) < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
        {
        }

        lock (_gate)
        {
            // While the exited leader still holds its group's id, kill what it left behind.
            // The cgroup, when there is one, holds every process of the attempt; the sweep then only reaps them.
            var inCgroup = Cgroup is null ? 0 : FreezerCgroups.KillAll(Cgroup, except: Pid);
            var swept = ProcessContainment.AttemptEnded(Pid, OutputDir);
            Stragglers = Cgroup is null ? swept : inCgroup;
            int status;
            int result;
            do
            {
                result = LibC.WaitPid(Pid, &status, 0);
            }
            while (result < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR);

            var error = result < 0 ? Marshal.GetLastPInvokeError() : 0;
            _reaped = true;
            ProcessContainment.Reaped(Pid);
            if (Cgroup is not null)
            {
                FreezerCgroups.Remove(Cgroup);
            }

            if (closePidFd && _pidFd >= 0)
            {
                LibC.Close(_pidFd);
            }

            var signal = status & 0x7f;
            _exit = result < 0
                // ECHILD: something reaped it as "any child" (or SIGCHLD is ignored, so the kernel did): the status is gone.
                ? new ChildExit(null, null, $"its exit status could not be read ({LibC.Describe(error)})")
                : signal == 0 ? new ChildExit((status >> 8) & 0xff, null, null) : new ChildExit(128 + signal, signal, null);
        }

        PartDone();
    }

    private void GiveUpOnPipes()
    {
        Stdout.GiveUp();
        Stderr.GiveUp();
    }

    private void PartDone()
    {
        if (Interlocked.Decrement(ref _partsLeft) == 0)
        {
            _completed.SetResult(_exit);
        }
    }
}

/// <summary>
/// The read end of a child's stdout or stderr pipe, drained on the reaper thread into a log file that is created
/// on the first byte (so a silent process leaves no file), keeping the last bytes as the tail.
/// </summary>
internal sealed class LogPipe : IReaperWatch
{
    private readonly Lock _gate = new();
    private readonly string _path;
    private readonly byte[] _tail;
    private int _tailLength;
    private int _file = -1;
    private bool _finished;

    public LogPipe(int readFd, string path, int tailBytes)
    {
        Fd = readFd;
        _path = path;
        _tail = new byte[tailBytes];
    }

    public int Fd { get; }

    public Action Finished { get; set; } = () => { };

    /// <summary>The first error writing the log file (the pipe is still drained so the child never blocks).</summary>
    public string? Error { get; private set; }

    public string Tail()
    {
        lock (_gate)
        {
            return System.Text.Encoding.UTF8.GetString(_tail, 0, _tailLength);
        }
    }

    /// <summary>One read per readiness (epoll is level-triggered and reports again while data is left), so the read end stays blocking.</summary>
    public unsafe bool OnReady(byte* buffer, int size)
    {
        var read = LibC.Read(Fd, buffer, (nuint)size);
        if (read < 0)
        {
            var error = Marshal.GetLastPInvokeError();
            if (error == LibC.EINTR)
            {
                return false;
            }

            Fail($"cannot read the process's output: {LibC.Describe(error)}");
            return true;
        }

        if (read == 0)
        {
            return true;
        }

        Append(buffer, (int)read);
        return false;
    }

    public void Close()
    {
        LibC.Close(Fd);
        lock (_gate)
        {
            if (_file >= 0)
            {
                LibC.Close(_file);
                _file = -1;
            }
        }

        Finish();
    }

    /// <summary>Stops waiting for end-of-file: what was read so far is the log; the rest is still written as it comes.</summary>
    public void GiveUp() => Finish();

    private void Finish()
    {
        lock (_gate)
        {
            if (_finished)
            {
                return;
            }

            _finished = true;
        }

        Finished();
    }

    private unsafe void Append(byte* data, int length)
    {
        lock (_gate)
        {
            var chunk = new ReadOnlySpan<byte>(data, length);
            if (_tail.Length > 0)
            {
                if (chunk.Length >= _tail.Length)
                {
                    chunk[^_tail.Length..].CopyTo(_tail);
                    _tailLength = _tail.Length;
                }
                else
                {
                    var keep = Math.Min(_tailLength, _tail.Length - chunk.Length);
                    _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
                    chunk.CopyTo(_tail.AsSpan(keep));
                    _tailLength = keep + chunk.Length;
                }
            }

            if (Error is not null)
            {
                return;
            }

            if (_file < 0 && !OpenFile())
            {
                return;
            }

            while (length > 0)
            {
                var written = LibC.Write(_file, data, (nuint)length);
                if (written < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
                {
                    continue;
                }

                if (written <= 0)
                {
                    Error = $"cannot write {_path}: {LibC.Describe(Marshal.GetLastPInvokeError())}";
                    return;
                }

                data += written;
                length -= (int)written;
            }
        }
    }

    private unsafe bool OpenFile()
    {
        var folder = LibC.Utf8(Path.GetDirectoryName(_path)!);
        var path = LibC.Utf8(_path);
        try
        {
            if (LibC.MkDir(folder, 0x1ed /* 0755 */) != 0 && Marshal.GetLastPInvokeError() != LibC.EEXIST)
            {
                Error = $"cannot create {_path}: {LibC.Describe(Marshal.GetLastPInvokeError())}";
                return false;
            }

            _file = LibC.Open(path, LibC.O_CREAT | LibC.O_WRONLY | LibC.O_TRUNC | LibC.O_CLOEXEC, 0x1a4 /* 0644 */);
            if (_file < 0)
            {
                Error = $"cannot create {_path}: {LibC.Describe(Marshal.GetLastPInvokeError())}";
                return false;
            }

            return true;
        }
        finally
        {
            NativeMemory.Free(folder);
            NativeMemory.Free(path);
        }
    }

    private void Fail(string error)
    {
        lock (_gate)
        {
            Error ??= error;
        }
    }
}

/// <summary>
/// One thread that waits, through epoll, for the children the posix_spawn launcher started (their pidfds) and
/// drains their output pipes. It reaps each child by its own pid and never waits for "any child": .NET's Process
/// class reaps the children it started itself by their pids too, so neither steals the other's exit status.
/// </summary>
internal sealed unsafe class ChildReaper
{
    private const int MaxEvents = 64;
    private const int BufferSize = 64 * 1024;

    private static readonly Lazy<ChildReaper> Shared = new(() => new ChildReaper(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly int _epoll;
    private readonly ConcurrentDictionary<int, IReaperWatch> _watches = new();

    private ChildReaper()
    {
        _epoll = LibC.EpollCreate1(LibC.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1: {LibC.Describe(Marshal.GetLastPInvokeError())}");
        }

        new Thread(Loop) { IsBackground = true, Name = "batchrunner child reaper" }.Start();
    }

    public static ChildReaper Instance => Shared.Value;

    /// <summary>Watches a child and its pipes; a pidfd of -1 (none could be opened) is waited for on a thread of its own.</summary>
    public void Watch(SpawnedChild child)
    {
        Add(child.Stdout);
        Add(child.Stderr);
        if (!Add(child))
        {
            _ = Task.Factory.StartNew(() => child.Reap(closePidFd: true), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    private bool Add(IReaperWatch watch)
    {
        if (watch.Fd < 0)
        {
            return false;
        }

        _watches[watch.Fd] = watch;
        var buffer = stackalloc byte[16];
        *(uint*)buffer = LibC.EPOLLIN;
        *(long*)(buffer + LibC.EpollDataOffset) = watch.Fd;
        if (LibC.EpollCtl(_epoll, LibC.EPOLL_CTL_ADD, watch.Fd, buffer) == 0)
        {
            return true;
        }

        _watches.TryRemove(watch.Fd, out _);
        if (watch is LogPipe pipe)
        {
            // Cannot watch it: stop reading it rather than wait on it.
            pipe.Close();
        }

        return false;
    }

    private void Loop()
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * LibC.EpollEventSize));
        var buffer = (byte*)NativeMemory.Alloc(BufferSize);
        while (true)
        {
            var count = LibC.EpollWait(_epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                // EINTR: a signal arrived (the runtime's own); anything else would repeat at once, so back off.
                if (Marshal.GetLastPInvokeError() != LibC.EINTR)
                {
                    Thread.Sleep(10);
                }

                continue;
            }

            for (var i = 0; i < count; i++)
            {
                var fd = (int)*(long*)(events + (i * LibC.EpollEventSize) + LibC.EpollDataOffset);
                if (_watches.TryGetValue(fd, out var watch) && watch.OnReady(buffer, BufferSize))
                {
                    // Out of the set before the close: a copy of the descriptor in a child between its vfork and exec
                    // would keep the registration alive past the close, and a later descriptor with the same number
                    // would be confused with it.
                    _watches.TryRemove(fd, out _);
                    LibC.EpollCtl(_epoll, LibC.EPOLL_CTL_DEL, fd, null);
                    watch.Close();
                }
            }
        }
    }
}
