using System.Runtime.InteropServices;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// The per-attempt file work on the dispatch path, in as few system calls as it takes: the attempt's folders and
/// its ledger row. .NET's own calls cost more here than the work (Directory.CreateDirectory probes every parent;
/// File.WriteAllBytes takes a lock and truncates, and a truncated file makes ext4 write it out on close).
/// Elsewhere than Linux the portable calls do the same.
/// </summary>
internal static class AttemptFiles
{
    /// <summary>Creates <paramref name="outputFolder"/> and its two parents (index, attempt) under an existing run folder.</summary>
    public static unsafe void CreateOutputFolder(string outputFolder)
    {
        var attemptFolder = Path.GetDirectoryName(outputFolder)!;
        var indexFolder = Path.GetDirectoryName(attemptFolder)!;
        if (!OperatingSystem.IsLinux() || !MakeFolder(indexFolder) || !MakeFolder(attemptFolder) || !MakeFolder(outputFolder))
        {
            Directory.CreateDirectory(outputFolder);
        }
    }

    /// <summary>Writes a file whole under a temporary name and renames it into place, so no reader sees half of it.</summary>
    public static unsafe void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temporary = path + ".tmp";
        if (!OperatingSystem.IsLinux())
        {
            File.WriteAllBytes(temporary, content);
            File.Move(temporary, path, overwrite: true);
            return;
        }

        var from = LibC.Utf8(temporary);
        var to = LibC.Utf8(path);
        try
        {
            var fd = LibC.Open(from, LibC.O_CREAT | LibC.O_WRONLY | LibC.O_TRUNC | LibC.O_CLOEXEC, 0x1a4 /* 0644 */);
            if (fd < 0)
            {
                throw Failure("cannot create", temporary);
            }

            try
            {
                fixed (byte* bytes = content)
                {
                    var written = 0;
                    while (written < content.Length)
                    {
                        var n = LibC.Write(fd, bytes + written, (nuint)(content.Length - written));
                        if (n < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
                        {
                            continue;
                        }

                        if (n <= 0)
                        {
                            throw Failure("cannot write", temporary);
                        }

                        written += (int)n;
                    }
                }
            }
            finally
            {
                LibC.Close(fd);
            }

            if (LibC.Rename(from, to) != 0)
            {
                throw Failure("cannot rename into", path);
            }
        }
        finally
        {
            NativeMemory.Free(from);
            NativeMemory.Free(to);
        }
    }

    /// <summary>False when the folder could not be made this way (say, a parent is missing).</summary>
    private static unsafe bool MakeFolder(string path)
    {
        var native = LibC.Utf8(path);
        try
        {
            return LibC.MkDir(native, 0x1ed /* 0755 */) == 0 || Marshal.GetLastPInvokeError() == LibC.EEXIST;
        }
        finally
        {
            NativeMemory.Free(native);
        }
    }

    private static IOException Failure(string what, string path) =>
        new($"{what} {path}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
}
