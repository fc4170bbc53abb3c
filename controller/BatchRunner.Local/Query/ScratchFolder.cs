namespace BatchRunner.Local.Query;

/// <summary>
/// A temporary folder this process holds while it works in it: a file inside is kept open with an exclusive lock, which
/// the kernel drops when the process ends however it ends. So a folder left behind by a process that was killed (a
/// leader killed mid-compaction, whose /tmp may be an emptyDir that outlives it) can be told from one in use, and the
/// next scratch folder of the same kind removes it instead of letting killed runs' copies pile up.
/// </summary>
public sealed class ScratchFolder : IDisposable
{
    private const string HeldFile = ".held";

    /// <summary>A folder from before such locks, or one whose creator died before taking its lock, goes after this long.</summary>
    private static readonly TimeSpan UnheldGrace = TimeSpan.FromHours(1);

    private readonly FileStream _held;

    private ScratchFolder(string path, FileStream held)
    {
        Path = path;
        _held = held;
    }

    public string Path { get; }

    /// <summary>Removes the abandoned folders named <paramref name="prefix"/>… in the temporary folder, then makes and holds a new one.</summary>
    public static ScratchFolder Create(string prefix)
    {
        RemoveAbandoned(prefix);
        var folder = Directory.CreateTempSubdirectory(prefix);
        var held = new FileStream(System.IO.Path.Combine(folder.FullName, HeldFile), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        return new ScratchFolder(folder.FullName, held);
    }

    /// <summary>Deletes the folders named <paramref name="prefix"/>… that no live process holds; returns how many.</summary>
    public static int RemoveAbandoned(string prefix)
    {
        var removed = 0;
        foreach (var folder in Directory.EnumerateDirectories(System.IO.Path.GetTempPath(), prefix + "*"))
        {
            try
            {
                var held = System.IO.Path.Combine(folder, HeldFile);
                if (File.Exists(held))
                {
                    // Throws while its process lives and holds it.
                    using (new FileStream(held, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                    {
                    }
                }
                else if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(folder) < UnheldGrace)
                {
                    continue;
                }

                Directory.Delete(folder, recursive: true);
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // In use, or gone meanwhile, or not ours to delete: left alone.
            }
        }

        return removed;
    }

    public void Dispose()
    {
        _held.Dispose();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Already gone.
        }
    }
}
