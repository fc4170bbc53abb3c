using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace BatchRunner.Local.Execution;

/// <summary>How a child ended: its exit code, or the signal that killed it, or why its status could not be read.</summary>
internal readonly record struct ChildExit(int? ExitCode, int? Signal, string? Error);

/// <summary>A child the posix_spawn launcher started, the leader of its own process group, until it is reaped.</summary>
internal sealed class SpawnedChild
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ChildExit> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _pidFd;
    private bool _reaped;

    public SpawnedChild(int pid, int pidFd)
    {
        Pid = pid;
        _pidFd = pidFd;
    }

    public int Pid { get; }

    public Task<ChildExit> Exited => _exit.Task;

    /// <summary>
    /// Kills the child's process group and any descendant that left it. Under the same lock as the reaping, so the
    /// pid is still this child's (alive or a zombie) and never a stranger's that reused it.
    /// </summary>
    public void KillTree()
    {
        lock (_gate)
        {
            if (_reaped)
            {
                return;
            }

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

            LibC.Kill(-Pid, LibC.SIGKILL);
        }
    }

    /// <summary>Reaps the child by its own pid (it has exited, or is about to) and completes <see cref="Exited"/>.</summary>
    internal unsafe void Reap()
    {
        ChildExit exit;
        lock (_gate)
        {
            int status;
            int result;
            do
            {
                result = LibC.WaitPid(Pid, &status, 0);
            }
            while (result < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR);

            var error = result < 0 ? Marshal.GetLastPInvokeError() : 0;
            _reaped = true;
            if (_pidFd >= 0)
            {
                LibC.Close(_pidFd);
            }

            var signal = status & 0x7f;
            exit = result < 0
                // ECHILD: something reaped it as "any child" (or SIGCHLD is ignored, so the kernel did): the status is gone.
                ? new ChildExit(null, null, $"its exit status could not be read ({LibC.Describe(error)})")
                : signal == 0 ? new ChildExit((status >> 8) & 0xff, null, null) : new ChildExit(128 + signal, signal, null);
        }

        _exit.SetResult(exit);
    }

    internal int PidFd => _pidFd;
}

/// <summary>
/// One thread that waits, through epoll on pidfds, for the children the posix_spawn launcher started, and reaps
/// each by its own pid. It never waits for "any child": .NET's Process class reaps the children it started itself
/// by their pids too, so neither steals the other's exit status.
/// </summary>
internal sealed unsafe class ChildReaper
{
    private const int MaxEvents = 64;

    private static readonly Lazy<ChildReaper> Shared = new(() => new ChildReaper(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly int _epoll;
    private readonly ConcurrentDictionary<int, SpawnedChild> _waiting = new();

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

    /// <summary>Watches a child; its pidfd (owned by it from now on) may be -1 when none could be opened.</summary>
    public void Watch(SpawnedChild child)
    {
        if (child.PidFd >= 0)
        {
            _waiting[child.PidFd] = child;
            var buffer = stackalloc byte[16];
            *(uint*)buffer = LibC.EPOLLIN;
            *(long*)(buffer + LibC.EpollDataOffset) = child.PidFd;
            if (LibC.EpollCtl(_epoll, LibC.EPOLL_CTL_ADD, child.PidFd, buffer) == 0)
            {
                return;
            }

            _waiting.TryRemove(child.PidFd, out _);
        }

        // Without a notification, a thread of its own blocks on this one child rather than lose it.
        _ = Task.Factory.StartNew(child.Reap, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Loop()
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * LibC.EpollEventSize));
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
                var pidFd = (int)*(long*)(events + (i * LibC.EpollEventSize) + LibC.EpollDataOffset);
                if (_waiting.TryRemove(pidFd, out var child))
                {
                    // Out of the set explicitly: a copy of the pidfd in a child between its vfork and exec would keep
                    // the registration alive past the close, and a later pidfd with the same number would be confused.
                    LibC.EpollCtl(_epoll, LibC.EPOLL_CTL_DEL, pidFd, null);
                    child.Reap();
                }
            }
        }
    }
}
