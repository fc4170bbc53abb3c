using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Makes each attempt's output folder the only part of the store its processes can write: each attempt starts in a
/// mount namespace of its own where the store is read-only except that folder, so no index writes another's outputs,
/// logs or the run state. A spawned process inherits the mount namespace of the thread that spawns it, so spawning
/// happens on one thread of this class's own (changing a thread-pool thread's namespace would leak into unrelated
/// work): a base namespace with the store read-only is made once; per attempt the thread enters a copy of it, binds
/// the output folder writable over itself, spawns, and returns to the runner's namespace. The attempt's namespace
/// lives as long as its processes.
/// Mounts need CAP_SYS_ADMIN (root). Without it <see cref="TryCreate"/> says why and attempts run without privacy.
/// A workload that is root could undo its own mounts: this keeps mistakes and sloppy workloads out, not root attackers.
/// </summary>
public sealed unsafe class PrivateOutputFolders : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly Thread _thread;
    private int _original = -1;
    private int _base = -1;

    private PrivateOutputFolders(string storeRoot)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "batchrunner-spawn" };
        _thread.Start();
        Unavailable = OnThread(() => Prepare(Path.GetFullPath(storeRoot)));
    }

    private string? Unavailable { get; }

    /// <summary>The run's private folders over <paramref name="storeRoot"/>, or null and why they cannot be made here.</summary>
    public static PrivateOutputFolders? TryCreate(string storeRoot, out string? unavailable)
    {
        if (!OperatingSystem.IsLinux())
        {
            unavailable = "mount namespaces are Linux's";
            return null;
        }

        var folders = new PrivateOutputFolders(storeRoot);
        unavailable = folders.Unavailable;
        if (unavailable is null)
        {
            return folders;
        }

        folders.Dispose();
        return null;
    }

    /// <summary>Runs <paramref name="spawn"/> in a namespace where <paramref name="outputFolder"/> is the store's only writable folder.</summary>
    /// <exception cref="IOException">The namespace could not be made; nothing was spawned.</exception>
    public T Spawn<T>(string outputFolder, Func<T> spawn) => OnThread(() =>
    {
        Enter(Path.GetFullPath(outputFolder));
        try
        {
            return spawn();
        }
        finally
        {
            Return();
        }
    });

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join();
        _work.Dispose();
        if (_base >= 0)
        {
            LibC.Close(_base);
        }

        if (_original >= 0)
        {
            LibC.Close(_original);
        }
    }

    private string? Prepare(string storeRoot)
    {
        // The thread gets its own filesystem context first: setns into a mount namespace needs it unshared.
        if (LibC.Unshare(LibC.CLONE_NEWNS) != 0)
        {
            return $"a mount namespace needs CAP_SYS_ADMIN (root): {LibC.Describe(Marshal.GetLastPInvokeError())}";
        }

        try
        {
            // Mounts made here stay here; the machine's later mounts still show here.
            Mount(null, "/", LibC.MS_REC | LibC.MS_SLAVE);
            _base = OpenOwnNamespace();
            Mount(storeRoot, storeRoot, LibC.MS_BIND | LibC.MS_REC);
            Mount(null, storeRoot, LibC.MS_BIND | LibC.MS_REMOUNT | LibC.MS_RDONLY | LibC.MS_NOSUID | LibC.MS_NODEV);

            // The runner's own namespace is what the thread returns to; it was this thread's before the unshare, and
            // the process's main thread still has it.
            _original = OpenNamespaceOf($"/proc/{Environment.ProcessId}/ns/mnt");
            if (LibC.SetNs(_original, LibC.CLONE_NEWNS) != 0)
            {
                throw new IOException($"cannot return to the runner's mount namespace: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    private void Enter(string outputFolder)
    {
        if (LibC.SetNs(_base, LibC.CLONE_NEWNS) != 0)
        {
            throw new IOException($"cannot enter the attempts' mount namespace: {LibC.Describe(Marshal.GetLastPInvokeError())}");
        }

        try
        {
            if (LibC.Unshare(LibC.CLONE_NEWNS) != 0)
            {
                throw new IOException($"cannot make the attempt's mount namespace: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }

            // A bind of a folder of a read-only mount is read-only too until remounted.
            Mount(outputFolder, outputFolder, LibC.MS_BIND);
            Mount(null, outputFolder, LibC.MS_BIND | LibC.MS_REMOUNT | LibC.MS_NOSUID | LibC.MS_NODEV);
        }
        catch
        {
            Return();
            throw;
        }
    }

    private void Return()
    {
        if (LibC.SetNs(_original, LibC.CLONE_NEWNS) != 0)
        {
            // Every later spawn would start in an attempt's namespace: better stop than run the next index there.
            Environment.FailFast($"cannot return to the runner's mount namespace: {LibC.Describe(Marshal.GetLastPInvokeError())}");
        }
    }

    private T OnThread<T>(Func<T> work)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        using var done = new ManualResetEventSlim();
        _work.Add(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                done.Set();
            }
        });
        done.Wait();
        error?.Throw();
        return result;
    }

    private void Loop()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work();
        }
    }

    private int OpenOwnNamespace() => OpenNamespaceOf("/proc/thread-self/ns/mnt");

    private static int OpenNamespaceOf(string path)
    {
        var native = LibC.Utf8(path);
        try
        {
            var fd = LibC.Open(native, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
            return fd >= 0 ? fd : throw new IOException($"cannot open {path}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
        }
        finally
        {
            NativeMemory.Free(native);
        }
    }

    private static void Mount(string? source, string target, ulong flags)
    {
        var from = LibC.Utf8(source ?? "none");
        var to = LibC.Utf8(target);
        try
        {
            if (LibC.Mount(from, to, null, flags, null) != 0)
            {
                throw new IOException($"cannot mount {target}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
            }
        }
        finally
        {
            NativeMemory.Free(from);
            NativeMemory.Free(to);
        }
    }
}
