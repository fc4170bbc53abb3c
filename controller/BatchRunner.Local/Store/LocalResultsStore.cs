using System.Text.Json;
using BatchRunner.Core.Store;

namespace BatchRunner.Local.Store;

/// <summary>
/// The results layout of <see cref="StoreLayout"/> under a local folder. Every file is written whole and then
/// renamed into place, so a reader (or a run killed mid-write) never sees half a ledger row.
/// </summary>
public sealed class LocalResultsStore(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    public string PathOf(string key) => Path.Combine(Root, key);

    /// <summary>Creates an attempt's output folder and returns its absolute path.</summary>
    public string PrepareAttempt(string batchJob, string runId, int index, int attempt)
    {
        var output = PathOf(StoreLayout.OutputPrefix(batchJob, runId, index, attempt));
        Directory.CreateDirectory(output);
        return output;
    }

    public string AttemptFolder(string batchJob, string runId, int index, int attempt) =>
        PathOf(StoreLayout.AttemptPrefix(batchJob, runId, index, attempt));

    public void WriteLedgerRow(LedgerRow row) =>
        WriteAtomically(PathOf(StoreLayout.LedgerKey(row.BatchJob, row.Run, row.Index, row.Attempt)), row.ToJsonUtf8());

    public LedgerRow? ReadLedgerRow(string batchJob, string runId, int index, int attempt)
    {
        var path = PathOf(StoreLayout.LedgerKey(batchJob, runId, index, attempt));
        return File.Exists(path) ? LedgerRow.FromJson(File.ReadAllBytes(path)) : null;
    }

    /// <summary>The highest attempt folder present for an index (0 when none): folders are made before their attempt is recorded.</summary>
    public int HighestAttemptOnDisk(string batchJob, string runId, int index)
    {
        var folder = PathOf($"{StoreLayout.RunPrefix(batchJob, runId)}/index={index}");
        if (!Directory.Exists(folder))
        {
            return 0;
        }

        var highest = 0;
        foreach (var attemptFolder in Directory.EnumerateDirectories(folder, "attempt=*"))
        {
            if (int.TryParse(Path.GetFileName(attemptFolder).AsSpan("attempt=".Length), out var attempt))
            {
                highest = Math.Max(highest, attempt);
            }
        }

        return highest;
    }

    public void WriteRunManifest(string batchJob, string runId, object manifest) =>
        WriteAtomically(PathOf(StoreLayout.RunManifestKey(batchJob, runId)), JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestOptions));

    /// <summary>Files and bytes an attempt wrote to its output folder.</summary>
    public static (int Files, long Bytes) MeasureOutput(string outputFolder)
    {
        var files = 0;
        long bytes = 0;
        foreach (var file in new DirectoryInfo(outputFolder).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            files++;
            bytes += file.Length;
        }

        return (files, bytes);
    }

    private static readonly JsonSerializerOptions ManifestOptions = new() { WriteIndented = true };

    private static void WriteAtomically(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }
}
