using BatchRunner.Local.Query;
using Xunit;

namespace BatchRunner.Local.Tests;

public sealed class ScratchFolderTests
{
    // A prefix of this test's own, so other tests' scratch folders are never touched.
    private readonly string _prefix = $"batchrunner-scratch-test-{Guid.NewGuid():N}-";

    [Fact]
    public void A_folder_left_by_a_killed_process_is_removed_and_one_in_use_is_kept()
    {
        // What a killed process leaves: its folder and lock file, the lock released with the process.
        var abandoned = Directory.CreateTempSubdirectory(_prefix).FullName;
        File.WriteAllText(Path.Combine(abandoned, ".held"), "");
        Directory.CreateDirectory(Path.Combine(abandoned, "parquet"));
        File.WriteAllBytes(Path.Combine(abandoned, "parquet", "part-00000.parquet"), new byte[4096]);
        // A folder just made whose maker has not taken its lock yet.
        var starting = Directory.CreateTempSubdirectory(_prefix).FullName;

        using var inUse = ScratchFolder.Create(_prefix);

        Assert.False(Directory.Exists(abandoned), "the killed process's folder is gone");
        Assert.True(Directory.Exists(starting), "a folder being made is left to its maker");
        Assert.True(Directory.Exists(inUse.Path));
        Assert.Equal(0, ScratchFolder.RemoveAbandoned(_prefix));
        Assert.True(Directory.Exists(inUse.Path), "a folder held by a live process is kept");
        Directory.Delete(starting);
    }

    [Fact]
    public void A_scratch_folder_is_gone_once_disposed()
    {
        string path;
        using (var scratch = ScratchFolder.Create(_prefix))
        {
            path = scratch.Path;
            File.WriteAllText(Path.Combine(path, "x"), "y");
        }

        Assert.False(Directory.Exists(path));
    }
}
