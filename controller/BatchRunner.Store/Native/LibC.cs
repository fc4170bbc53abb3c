using System.Runtime.InteropServices;

namespace BatchRunner.Store.Native;

/// <summary>
/// The few libc calls the posix_spawn launcher needs. No library on the registry wraps posix_spawn with file actions,
/// process groups and pidfds (Tmds.LibC is not there), so this stays small and private to the launcher.
/// Linux only, 64-bit (x64 and arm64): struct sizes and flag values below are those of Linux's generic ABI.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int ECHILD = 10;
    public const int EEXIST = 17;
    public const int ESRCH = 3;

    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_CREAT = 0x40;
    public const int O_TRUNC = 0x200;
    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800;
    public static readonly int O_NOFOLLOW = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x8000 : 0x20000;
    public static readonly int O_DIRECTORY = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x4000 : 0x10000;

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_SIZE = 0x200;

    /// <summary>struct statx: one layout on every architecture (unlike struct stat), so its offsets are fixed.</summary>
    public const int StatxSize = 256;
    public const int StatxModeOffset = 28;
    public const int StatxSizeOffset = 40;

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFLNK = 0xA000;
    public const int S_IFIFO = 0x1000;
    public const int S_IFSOCK = 0xC000;
    public const int S_IFCHR = 0x2000;
    public const int S_IFBLK = 0x6000;

    public const short POSIX_SPAWN_SETPGROUP = 0x02;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    public const int SIGKILL = 9;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLLIN = 0x001;

    /// <summary>Opaque glibc/musl types, allocated generously: posix_spawnattr_t is 336 bytes, the file actions 80, sigset_t 128.</summary>
    public const int SpawnAttrSize = 512;
    public const int FileActionsSize = 256;
    public const int SigSetSize = 128;

    /// <summary>x64 packs epoll_event (12 bytes); arm64 aligns its 64-bit data (16 bytes).</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private const long SYS_pidfd_open = 434; // the same number on every Linux architecture (the unified table)

    [LibraryImport(Lib, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(out int pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen")]
    public static partial int FileActionsAddOpen(void* actions, int fd, byte* path, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* actions, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    public static partial int FileActionsAddChdir(void* actions, byte* path);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init")]
    public static partial int SpawnAttrInit(void* attributes);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int SpawnAttrDestroy(void* attributes);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int SpawnAttrSetFlags(void* attributes, short flags);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setpgroup")]
    public static partial int SpawnAttrSetPGroup(void* attributes, int pgroup);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int SpawnAttrSetSigMask(void* attributes, void* mask);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int SpawnAttrSetSigDefault(void* attributes, void* signals);

    [LibraryImport(Lib, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* set);

    [LibraryImport(Lib, EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* set);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true)]
    public static partial int Open(byte* path, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "mkdir", SetLastError = true)]
    public static partial int MkDir(byte* path, uint mode);

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "rename", SetLastError = true)]
    public static partial int Rename(byte* oldPath, byte* newPath);

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(Lib, EntryPoint = "getpgid", SetLastError = true)]
    public static partial int GetPGid(int pid);

    [LibraryImport(Lib, EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, void* eventData);

    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, void* events, int maxEvents, int timeout);

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long first, long second);

    public const int PR_SET_CHILD_SUBREAPER = 36;
    public const int WNOHANG = 1;
    public const int P_PID = 1;
    public const int WEXITED = 4;
    public const int WNOWAIT = 0x01000000;
    public const int SigInfoSize = 128;

    [LibraryImport(Lib, EntryPoint = "waitid", SetLastError = true)]
    public static partial int WaitId(int idType, int id, void* info, int options);

    [LibraryImport(Lib, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    public const int CLONE_NEWNS = 0x00020000;
    public const ulong MS_RDONLY = 1;
    public const ulong MS_NOSUID = 2;
    public const ulong MS_NODEV = 4;
    public const ulong MS_REMOUNT = 32;
    public const ulong MS_BIND = 4096;
    public const ulong MS_REC = 16384;
    public const ulong MS_SLAVE = 1 << 19;

    private static readonly long SYS_gettid = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 178 : 186;

    /// <summary>The calling thread's id: cgroup v1 moves threads one at a time, through <c>tasks</c>.</summary>
    public static int GetTid() => (int)Syscall(SYS_gettid, 0, 0);

    [LibraryImport(Lib, EntryPoint = "rmdir", SetLastError = true)]
    public static partial int RmDir(byte* path);

    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int namespaceType);

    [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true)]
    public static partial int Mount(byte* source, byte* target, byte* fileSystemType, ulong flags, void* data);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(int dirFd, byte* path, int flags, uint mask, byte* buffer);

    /// <summary>A file descriptor that refers to the process (Linux 5.3+), pollable for its exit, immune to pid reuse.</summary>
    public static int PidFdOpen(int pid) => (int)Syscall(SYS_pidfd_open, pid, 0);

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>A NUL-terminated UTF-8 copy in native memory; free with <see cref="NativeMemory.Free"/>.</summary>
    public static byte* Utf8(string text)
    {
        var length = System.Text.Encoding.UTF8.GetByteCount(text);
        var buffer = (byte*)NativeMemory.Alloc((nuint)length + 1);
        System.Text.Encoding.UTF8.GetBytes(text, new Span<byte>(buffer, length));
        buffer[length] = 0;
        return buffer;
    }
}
