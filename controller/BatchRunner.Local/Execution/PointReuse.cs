using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.State;
using BatchRunner.Store;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Taking an earlier identical point's result instead of running an index (<c>spec.reuse</c>, on by default): the
/// state keeps every succeeded attempt's point key and the digest of its output files; an index whose key an earlier
/// run of the namespace computed gets that attempt's outputs and logs copied into an attempt of its own, and a ledger
/// row saying where they came from (<c>reused_from</c>), so queries answer as if it had run. A source whose files were
/// deleted or changed since is not reused: the index runs, and its ledger row says why.
/// </summary>
public static class PointReuse
{
    private static readonly ConcurrentDictionary<(string Path, long Size, DateTime Modified), string> FileDigests = new();

    /// <summary>What the local backend knows of the program: a digest of each file the command and args name that exists.</summary>
    public static string ProgramOf(BatchJob job, string workingDirectory)
    {
        var named = new List<string>();
        foreach (var word in job.Spec.Command.Concat(job.Spec.Args).Distinct(StringComparer.Ordinal))
        {
            if (word.Length == 0 || word.StartsWith('-') || word.Contains('\0', StringComparison.Ordinal))
            {
                continue;
            }

            var path = Path.IsPathRooted(word) ? word : Path.Combine(workingDirectory, word);
            if (DigestOfFile(path) is { } digest)
            {
                named.Add($"{word}={digest}");
            }
        }

        return string.Join('\n', named);
    }

    /// <summary>The store path of an attempt, as <c>reused_from</c> names it.</summary>
    public static string SourceOf(PointRecord point) => StoreLayout.AttemptPrefix(point.BatchJob, point.RunId, point.Index, point.Attempt);

    /// <summary>
    /// Copies the first of <paramref name="candidates"/> whose outputs are as they were into the attempt folder and
    /// writes its ledger row: the row, or null with why none could be taken (each was deleted or changed).
    /// </summary>
    public static (LedgerRow? Row, string? Refused) TryReuse(
        LocalResultsStore store, IReadOnlyList<PointRecord> candidates, LedgerRow target, DateTimeOffset now)
    {
        string? refused = null;
        foreach (var point in candidates)
        {
            var source = store.AttemptFolder(point.BatchJob, point.RunId, point.Index, point.Attempt);
            var sourceOutput = Path.Combine(source, StoreLayout.OutputFolder);
            var row = store.ReadLedgerRow(point.BatchJob, point.RunId, point.Index, point.Attempt);
            if (row?.Status != AttemptOutcome.Succeeded.ToLedger() || OutputFolder.Digest(sourceOutput) != point.Digest)
            {
                refused = $"the earlier result of this point at {SourceOf(point)} was deleted or changed since it was recorded, so the index ran";
                continue;
            }

            var folder = store.AttemptFolder(target.BatchJob, target.Run, target.Index, target.Attempt);
            var output = Path.Combine(folder, StoreLayout.OutputFolder);
            AttemptFiles.CreateOutputFolder(output);
            foreach (var file in OutputFolder.Scan(sourceOutput).Files)
            {
                // Read as the digest was: a regular file, never through a link.
                var destination = Path.Combine(output, file.Name);
                Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                using var from = OutputFolder.OpenRegular(file.Path);
                using var to = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None);
                from.CopyTo(to);
            }

            var logs = Path.Combine(source, StoreLayout.LogsFolder);
            if (Directory.Exists(logs))
            {
                Directory.CreateDirectory(Path.Combine(folder, StoreLayout.LogsFolder));
                foreach (var log in Directory.EnumerateFiles(logs))
                {
                    File.Copy(log, Path.Combine(folder, StoreLayout.LogsFolder, Path.GetFileName(log)), overwrite: true);
                }
            }

            // The outcome and output counts are the source's; who, where and when are this index's.
            var reused = row with
            {
                BatchJob = target.BatchJob,
                Namespace = target.Namespace,
                Run = target.Run,
                Index = target.Index,
                Attempt = target.Attempt,
                Repeat = target.Repeat,
                Seed = target.Seed,
                Params = target.Params,
                PointKey = target.PointKey,
                ReusedFrom = SourceOf(point),
                StartedAt = now,
                FinishedAt = now,
                DurationSeconds = 0,
            };
            AttemptFiles.WriteAtomically(Path.Combine(folder, StoreLayout.LedgerFile), reused.ToJsonUtf8());
            return (reused, null);
        }

        return (null, refused);
    }

    private static string? DigestOfFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Attributes.HasFlag(FileAttributes.Directory) || info.Length > 1L << 30)
            {
                return null;
            }

            return FileDigests.GetOrAdd((info.FullName, info.Length, info.LastWriteTimeUtc), key =>
            {
                using var stream = File.OpenRead(key.Path);
                return Convert.ToHexStringLower(SHA256.HashData(stream))[..16];
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
