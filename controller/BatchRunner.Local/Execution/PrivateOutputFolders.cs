using System.Runtime.InteropServices;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Makes each attempt's output folder the only part of the store its processes can write: each attempt starts in a
/// mount namespace of its own where the store is read-only except that folder, so no index writes another's outputs,
/// logs or the run state. A spawned process inherits the mount namespace of the thread that spawns it, so this acts
/// on <see cref="AttemptIsolation"/>'s spawn thread only (changing a thread-pool thread's namespace would leak into
/// unrelated work): a base namespace with the store read-only is made once; per attempt the thread enters a copy of
/// it, binds the output folder writable over itself, spawns, and returns to the runner's namespace. The attempt's
/// namespace lives as long as its processes.
/// Mounts need CAP_SYS_ADMIN (root). Without it <see cref="Unavailable"/> says why and attempts run without privacy.
/// A workload that is root could undo its own mounts: this keeps mistakes and sloppy workloads out, not root attackers.
/// </summary>
internal sealed unsafe class PrivateOutputFolders : IDisposable
{
    private int _original = -1;
    private int _base = -1;

    /// <summary>On the spawn thread: the base namespace over <paramref name="storeRoot"/>.</summary>
    public PrivateOutputFolders(string storeRoot)
    {
        Unavailable = OperatingSystem.IsLinux() ? Prepare(Path.GetFullPath(storeRoot)) : "mount namespaces are Linux's";
    }

    /// <summary>Null when output folders are private; else why they are not.</summary>
    public string? Unavailable { get; }

    /// <summary>On the spawn thread: into a namespace where <paramref name="outputFolder"/> is the store's only writable folder.</summary>
    /// <exception cref="IOException">The namespace could not be made; the thread is back in the runner's.</exception>
    public void Enter(string outputFolder)
    {
        outputFolder = Path.GetFullPath(outputFolder);
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

    public void Dispose()
    {
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
        try
        {
            // The runner's namespace, to return to: the process's main thread keeps it.
            _original = OpenNamespaceOf($"/proc/{Environment.ProcessId}/ns/mnt");
        }
        catch (IOException e)
        {
            return e.Message;
        }

        // This also gives the thread its own filesystem context, which setns into a mount namespace needs.
        if (LibC.Unshare(LibC.CLONE_NEWNS) != 0)
        {
            return $"a mount namespace needs CAP_SYS_ADMIN (root): {LibC.Describe(Marshal.GetLastPInvokeError())}";
        }

        try
        {
            // Mounts made here stay here; the machine's later mounts still show here.
            Mount(null, "/", LibC.MS_REC | LibC.MS_SLAVE);
            Mount(storeRoot, storeRoot, LibC.MS_BIND | LibC.MS_REC);
            Mount(null, storeRoot, LibC.MS_BIND | LibC.MS_REMOUNT | LibC.MS_RDONLY | LibC.MS_NOSUID | LibC.MS_NODEV);
            _base = OpenOwnNamespace();
            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
        finally
        {
            Return();
        }
    }

    /// <summary>On the spawn thread: back to the runner's own namespace.</summary>
    public void Return()
    {
        if (LibC.SetNs(_original, LibC.CLONE_NEWNS) != 0)
        {
            // Every later spawn would start in an attempt's namespace: better stop than run the next index there.
            Environment.FailFast($"cannot return to the runner's mount namespace: {LibC.Describe(Marshal.GetLastPInvokeError())}");
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
