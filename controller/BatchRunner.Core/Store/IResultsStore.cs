namespace BatchRunner.Core.Store;

/// <summary>One stored object: its key under the store's root and its size.</summary>
public sealed record StoredObject(string Key, long Size);

/// <summary>
/// The results store as its two users need it: the results wrapper (which uploads an attempt's files and its
/// ledger row) and compaction (which reads a run's raw files and puts its Parquet and manifest). Keys are
/// <see cref="StoreLayout"/> keys relative to the store's root. Implemented over a local folder
/// (<c>BatchRunner.Store.LocalResultsStore</c>) and over S3 (<c>BatchRunner.Aws.S3.S3ResultsStore</c>); it
/// is defined here rather than beside one user because its users live in different assemblies.
/// </summary>
public interface IResultsStore
{
    /// <summary>The store's root as a user would write it: a folder or <c>s3://bucket/prefix</c>.</summary>
    string Location { get; }

    /// <summary>The root on this machine's disk when the store is a local folder (files can be read in place), else null.</summary>
    string? LocalRoot { get; }

    /// <summary>Stores a file under a key, streaming it (large files go in parts); readers never see half of it.</summary>
    Task PutFileAsync(string key, string path, CancellationToken cancellation);

    /// <summary>Stores a small object whole; readers never see half of it.</summary>
    Task PutBytesAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellation);

    /// <summary>A small object's content, or null when there is none under the key.</summary>
    Task<byte[]?> GetBytesAsync(string key, CancellationToken cancellation);

    /// <summary>Copies an object to a local file, streaming it.</summary>
    Task DownloadAsync(string key, string path, CancellationToken cancellation);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>, in key order.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string prefix, CancellationToken cancellation);

    /// <summary>Moves an object to another key, replacing what is there (rename locally; copy then delete on S3).</summary>
    Task MoveAsync(string fromKey, string toKey, CancellationToken cancellation);

    /// <summary>Deletes an object; nothing happens when there is none.</summary>
    Task DeleteAsync(string key, CancellationToken cancellation);
}
