using System.Runtime.CompilerServices;
using System.Text.Json;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;

namespace BatchRunner.Store;

/// <summary>
/// The results layout of <see cref="StoreLayout"/> under a local folder. Every file is written whole and then
/// renamed into place, so a reader (or a run killed mid-write) never sees half a ledger row.
/// </summary>
public sealed class LocalResultsStore(string root) : IResultsStore
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

    /// <summary>
    /// Writes an attempt's ledger row. A row that does not say what its output holds (the local executor's) gets
    /// the output summary of its attempt's folder first, so every row names its result rows and malformed lines.
    /// </summary>
    public void WriteLedgerRow(LedgerRow row)
    {
        if (row.OutputRows is null)
        {
            row = InspectOutput(PathOf(StoreLayout.OutputPrefix(row.BatchJob, row.Run, row.Index, row.Attempt)), format: null).ApplyTo(row);
        }

        WriteAtomically(PathOf(StoreLayout.LedgerKey(row.BatchJob, row.Run, row.Index, row.Attempt)), row.ToJsonUtf8());
    }

    /// <summary>
    /// Files, bytes, result rows and malformed lines of an output folder (empty when it does not exist). Without a
    /// format (a ledger row does not carry the spec's), CSV when the folder holds CSV and no JSON lines. Entries that
    /// are not regular files (links, FIFOs, sockets, devices) are never followed or opened: they are removed from the
    /// folder, so nothing that reads it later meets them, and named in the note.
    /// </summary>
    public static OutputSummary InspectOutput(string outputFolder, ResultsFormat? format)
    {
        var scan = OutputFolder.Scan(outputFolder);
        OutputFolder.RemoveLeftOut(outputFolder, scan);
        format ??= scan.Files.Any(f => f.Name.EndsWith(".csv", StringComparison.Ordinal)) && !scan.Files.Any(f => f.Name.EndsWith(".jsonl", StringComparison.Ordinal))
            ? ResultsFormat.Csv
            : ResultsFormat.Jsonl;
        return OutputInspector.Inspect(
            scan.Files.Select(f => (f.Name, f.Size, (Func<Stream>)(() => OutputFolder.OpenRegular(f.Path)))), format.Value,
            scan.LeftOut.Select(e => (e.Name, e.Kind)).ToList());
    }

    private static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 64 * 1024, FileOptions.SequentialScan);

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

    internal void WriteRunManifest(string batchJob, string runId, RunManifest manifest) =>
        WriteAtomically(PathOf(StoreLayout.RunManifestKey(batchJob, runId)), JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJson.Default.RunManifest));

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

    // IResultsStore: the same layout as S3, for the results wrapper and compaction.
    public string Location => Root;

    public string? LocalRoot => Root;

    public async Task PutFileAsync(string key, string path, CancellationToken cancellation)
    {
        var target = PathOf(key);
        if (Path.GetFullPath(path) == target)
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temporary = target + ".tmp";
        await using (var source = OpenRead(path))
        await using (var destination = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
        {
            await source.CopyToAsync(destination, cancellation).ConfigureAwait(false);
        }

        File.Move(temporary, target, overwrite: true);
    }

    public Task PutBytesAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellation)
    {
        WriteAtomically(PathOf(key), content.ToArray());
        return Task.CompletedTask;
    }

    public async Task<byte[]?> GetBytesAsync(string key, CancellationToken cancellation)
    {
        var path = PathOf(key);
        return File.Exists(path) ? await File.ReadAllBytesAsync(path, cancellation).ConfigureAwait(false) : null;
    }

    public async Task DownloadAsync(string key, string path, CancellationToken cancellation)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await using var source = OpenRead(PathOf(key));
        await using var destination = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous);
        await source.CopyToAsync(destination, cancellation).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellation)
    {
        // A key prefix may end inside a folder name ("index=1" also matches "index=12"): list from its folder.
        var slash = prefix.LastIndexOf('/');
        var folder = PathOf(slash < 0 ? "" : prefix[..slash]);
        if (!Directory.Exists(folder))
        {
            yield break;
        }

        var found = new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories)
            .Select(f => new StoredObject(Path.GetRelativePath(Root, f.FullName).Replace('\\', '/'), f.Length))
            .Where(o => o.Key.StartsWith(prefix, StringComparison.Ordinal) && !o.Key.EndsWith(".tmp", StringComparison.Ordinal))
            .OrderBy(o => o.Key, StringComparer.Ordinal);
        foreach (var item in found)
        {
            cancellation.ThrowIfCancellationRequested();
            yield return item;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    public Task MoveAsync(string fromKey, string toKey, CancellationToken cancellation)
    {
        var target = PathOf(toKey);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(PathOf(fromKey), target, overwrite: true);
        PruneEmptyFolders(PathOf(fromKey));
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string key, CancellationToken cancellation)
    {
        var path = PathOf(key);
        if (File.Exists(path))
        {
            File.Delete(path);
            PruneEmptyFolders(path);
        }

        return Task.CompletedTask;
    }

    // Folders exist only through their files on S3; here, folders a move or delete emptied go too.
    private void PruneEmptyFolders(string removedFile)
    {
        for (var folder = Path.GetDirectoryName(removedFile); folder is not null && folder.Length > Root.Length && Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any(); folder = Path.GetDirectoryName(folder))
        {
            Directory.Delete(folder);
        }
    }

    private static void WriteAtomically(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }
}
