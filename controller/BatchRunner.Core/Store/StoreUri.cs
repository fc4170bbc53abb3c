namespace BatchRunner.Core.Store;

/// <summary>A results store location: <c>s3://bucket/prefix</c> or a local folder.</summary>
public sealed record StoreUri(string? Bucket, string Prefix, string? LocalPath)
{
    public bool IsS3 => Bucket is not null;

    /// <summary>Parses a store location; an <c>s3://</c> URI needs a bucket, any other text is a local path.</summary>
    public static StoreUri Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        if (!text.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            if (text.Contains("://", StringComparison.Ordinal))
            {
                throw new FormatException($"results store \"{text}\": expected s3://bucket/prefix or a local folder");
            }

            return new StoreUri(null, "", text);
        }

        var rest = text["s3://".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length == 0)
        {
            throw new FormatException($"results store \"{text}\": the S3 URI names no bucket");
        }

        return new StoreUri(bucket, prefix, null);
    }

    /// <summary>Splits <c>s3://bucket/key</c> into its bucket and key (for a single object such as a spec).</summary>
    public static (string Bucket, string Key) ParseObject(string text)
    {
        var uri = Parse(text);
        if (!uri.IsS3 || uri.Prefix.Length == 0)
        {
            throw new FormatException($"\"{text}\": expected s3://bucket/key");
        }

        return (uri.Bucket!, uri.Prefix);
    }

    public override string ToString() => IsS3 ? (Prefix.Length == 0 ? $"s3://{Bucket}" : $"s3://{Bucket}/{Prefix}") : LocalPath!;
}
