using System.Security.Cryptography;
using System.Text;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Intake;

/// <summary>Where a request's name, and so its identity, came from, in the order they are looked for.</summary>
public enum IdentitySource
{
    /// <summary>The document's own <c>metadata.name</c>.</summary>
    MetadataName,

    /// <summary>The <c>BatchRunnerRequestId</c> message attribute.</summary>
    RequestId,

    /// <summary>The FIFO queue's <c>MessageDeduplicationId</c> (given by the producer, or the body's hash).</summary>
    DeduplicationId,

    /// <summary>A hash of the body: the same body is the same request.</summary>
    BodyHash,
}

/// <summary>
/// A request's stable identity is the BatchJob's namespace and name. A document without <c>metadata.name</c> gets
/// one derived from what the producer says identifies the request (a <c>BatchRunnerRequestId</c> attribute, else
/// the FIFO deduplication id, else the body itself), the same on every delivery of the message: so a redelivered or
/// duplicated message finds the job its first delivery recorded, and never creates a second one.
/// </summary>
public static class RequestIdentity
{
    /// <summary>The message attribute a producer may set to name the request (when the document has no name).</summary>
    public const string RequestIdAttribute = "BatchRunnerRequestId";

    private const int HashLength = 10;

    /// <summary>The name for a request without <c>metadata.name</c>, and where it came from.</summary>
    public static (string Name, IdentitySource Source) Derive(string? requestId, string? deduplicationId, string body)
    {
        if (!string.IsNullOrEmpty(requestId))
        {
            return (NameFor(requestId), IdentitySource.RequestId);
        }

        if (!string.IsNullOrEmpty(deduplicationId))
        {
            return (NameFor(deduplicationId), IdentitySource.DeduplicationId);
        }

        return ("req-" + Hash(body)[..16], IdentitySource.BodyHash);
    }

    /// <summary>
    /// A DNS label of at most <see cref="SpecLimits.MaxNameLength"/> characters for an id: the id itself when it is
    /// one already, else its letters and digits, lower-cased, with a hash of the whole id, so that two ids that
    /// differ only in case or punctuation still get two names.
    /// </summary>
    public static string NameFor(string id)
    {
        if (id.Length <= SpecLimits.MaxNameLength && IsDnsLabel(id))
        {
            return id;
        }

        var slug = new StringBuilder(id.Length);
        foreach (var c in id)
        {
            var lower = char.ToLowerInvariant(c);
            if (lower is (>= 'a' and <= 'z') or (>= '0' and <= '9'))
            {
                slug.Append(lower);
            }
            else if (slug.Length > 0 && slug[^1] != '-')
            {
                slug.Append('-');
            }
        }

        var stem = slug.ToString(0, Math.Min(slug.Length, SpecLimits.MaxNameLength - HashLength - 1)).Trim('-');
        var hash = Hash(id)[..HashLength];
        return stem.Length == 0 ? "req-" + hash : $"{stem}-{hash}";
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private static bool IsDnsLabel(string text)
    {
        if (text.Length == 0 || text[0] == '-' || text[^1] == '-')
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
