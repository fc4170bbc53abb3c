using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using BatchRunner.Store.Native;
using Microsoft.Win32.SafeHandles;

namespace BatchRunner.Store;

/// <summary>A regular file of an attempt's output folder, by its name relative to the folder.</summary>
public sealed record OutputEntry(string Name, long Size, string Path);

/// <summary>An entry of an output folder that is not data and was left out: a link, a FIFO, a socket, a device, one too deep.</summary>
public sealed record LeftOutEntry(string Name, string Kind);

/// <summary>What an output folder holds: its regular files, and what was left out of it.</summary>
public sealed record OutputScan(IReadOnlyList<OutputEntry> Files, IReadOnlyList<LeftOutEntry> LeftOut)
{
    public static readonly OutputScan Empty = new([], []);
}

/// <summary>
/// Reads what a workload left in its output folder without trusting it: links are never followed (out of the folder
/// or within it), entries that are not regular files are never opened (a FIFO blocks its reader until a writer comes,
/// a device never ends), folders nest at most <see cref="MaxDepth"/> deep. On Linux each entry is examined with
/// statx without following links and opened with O_NOFOLLOW | O_NONBLOCK, then checked again, so an entry swapped
/// after the scan still cannot block or lead elsewhere; elsewhere .NET's own view of links stands in.
/// </summary>
public static class OutputFolder
{
    public const int MaxDepth = 32;

    /// <summary>
    /// The digest of an output folder: every regular file's name, size and content, in name order (links and special
    /// files are not read); null when the folder is gone. What a reuse checks an earlier result against.
    /// </summary>
    public static string? Digest(string outputFolder)
    {
        if (!Directory.Exists(outputFolder))
        {
            return null;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Scan(outputFolder).Files)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{file.Name}\0{file.Size}\0")));
            using var stream = OpenRegular(file.Path);
            var buffer = new byte[81920];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static OutputScan Scan(string folder)
    {
        // The folder itself may have been swapped for a link (rm -rf "$BATCHRUNNER_OUTPUT_DIR"; ln -s /etc …): not followed either.
        var (kind, _) = Lstat(folder);
        if (kind != LibC.S_IFDIR)
        {
            return kind is -1 ? OutputScan.Empty : new OutputScan([], [new LeftOutEntry(".", $"the output folder itself is a {Describe(kind)}")]);
        }

        var files = new List<OutputEntry>();
        var leftOut = new List<LeftOutEntry>();
        Walk(folder, "", 0, files, leftOut);
        files.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        leftOut.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return new OutputScan(files, leftOut);
    }

    /// <summary>
    /// Removes the left-out entries (the entries themselves: a link is removed, not its target; a folder too deep with
    /// what it holds), so nothing that reads the folder later (the query views' globs, an upload) meets them.
    /// </summary>
    public static void RemoveLeftOut(string folder, OutputScan scan)
    {
        foreach (var entry in scan.LeftOut)
        {
            var path = entry.Name == "." ? folder : Path.Combine(folder, entry.Name);
            try
            {
                if (entry.Kind == TooDeep)
                {
                    // Directory.Delete removes links inside without following them.
                    Directory.Delete(path, recursive: true);
                }
                else
                {
                    File.Delete(path);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left where it is; the note already says it was left out.
            }
        }
    }

    /// <summary>Opens a regular file for reading; throws <see cref="IOException"/> when the entry is anything else now.</summary>
    public static unsafe Stream OpenRegular(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, FileOptions.SequentialScan);
        }

        var native = LibC.Utf8(path);
        int fd;
        try
        {
            fd = LibC.Open(native, LibC.O_RDONLY | LibC.O_NOFOLLOW | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        }
        finally
        {
            NativeMemory.Free(native);
        }

        if (fd < 0)
        {
            throw new IOException($"{path}: {LibC.Describe(Marshal.GetLastPInvokeError())}");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var (kind, _) = StatOpen(fd);
        if (kind != LibC.S_IFREG)
        {
            handle.Dispose();
            throw new IOException($"{path}: not a regular file ({Describe(kind)})");
        }

        return new FileStream(handle, FileAccess.Read, 64 * 1024);
    }

    private const string TooDeep = "folder nested too deep";

    private static void Walk(string folder, string prefix, int depth, List<OutputEntry> files, List<LeftOutEntry> leftOut)
    {
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(folder).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            leftOut.Add(new LeftOutEntry(prefix.TrimEnd('/'), "unreadable folder"));
            return;
        }

        foreach (var path in entries)
        {
            var name = prefix + Path.GetFileName(path);
            var (kind, size) = Lstat(path);
            switch (kind)
            {
                case LibC.S_IFREG:
                    files.Add(new OutputEntry(name, size, path));
                    break;
                case LibC.S_IFDIR when depth + 1 >= MaxDepth:
                    leftOut.Add(new LeftOutEntry(name, TooDeep));
                    break;
                case LibC.S_IFDIR:
                    Walk(path, name + "/", depth + 1, files, leftOut);
                    break;
                default:
                    leftOut.Add(new LeftOutEntry(name, Describe(kind)));
                    break;
            }
        }
    }

    private static string Describe(int kind) => kind switch
    {
        LibC.S_IFLNK => "symbolic link",
        LibC.S_IFIFO => "FIFO",
        LibC.S_IFSOCK => "socket",
        LibC.S_IFCHR => "character device",
        LibC.S_IFBLK => "block device",
        LibC.S_IFDIR => "folder",
        -1 => "gone or unreadable",
        _ => string.Create(CultureInfo.InvariantCulture, $"file of type 0x{kind:x}"),
    };

    /// <summary>The entry's type (an S_IF* value, -1 when it cannot be examined) and size, without following a link.</summary>
    private static unsafe (int Kind, long Size) Lstat(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            var info = new FileInfo(path);
            return info.LinkTarget is not null ? (LibC.S_IFLNK, 0)
                : info.Attributes.HasFlag(FileAttributes.Directory) ? (LibC.S_IFDIR, 0)
                : info.Exists ? (LibC.S_IFREG, info.Length) : (-1, 0);
        }

        var native = LibC.Utf8(path);
        try
        {
            var buffer = stackalloc byte[LibC.StatxSize];
            return LibC.Statx(LibC.AT_FDCWD, native, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_TYPE | LibC.STATX_SIZE, buffer) != 0
                ? (-1, 0)
                : (*(ushort*)(buffer + LibC.StatxModeOffset) & LibC.S_IFMT, *(long*)(buffer + LibC.StatxSizeOffset));
        }
        finally
        {
            NativeMemory.Free(native);
        }
    }

    private static unsafe (int Kind, long Size) StatOpen(int fd)
    {
        var empty = stackalloc byte[1];
        empty[0] = 0;
        var buffer = stackalloc byte[LibC.StatxSize];
        return LibC.Statx(fd, empty, LibC.AT_EMPTY_PATH, LibC.STATX_TYPE | LibC.STATX_SIZE, buffer) != 0
            ? (-1, 0)
            : (*(ushort*)(buffer + LibC.StatxModeOffset) & LibC.S_IFMT, *(long*)(buffer + LibC.StatxSizeOffset));
    }
}
