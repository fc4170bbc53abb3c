using System.Globalization;
using Amazon.SQS.Model;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// A received message while the intake holds it: from ReceiveMessage until it is deleted, released or left to
/// come back. Its visibility is extended while it is held (see <see cref="VisibilityKeeper"/>).
/// </summary>
internal sealed class Lease(Message message, DateTimeOffset receivedAt, TimeSpan visibility)
{
    private long _visibleAtTicks = (receivedAt + visibility).UtcTicks;
    private volatile bool _lost;

    public Message Message { get; } = message;

    public string MessageId => Message.MessageId;

    public string ReceiptHandle => Message.ReceiptHandle;

    public DateTimeOffset ReceivedAt { get; } = receivedAt;

    /// <summary>When the message becomes visible to other consumers again unless extended first.</summary>
    public DateTimeOffset VisibleAt
    {
        get => new(Interlocked.Read(ref _visibleAtTicks), TimeSpan.Zero);
        set => Interlocked.Exchange(ref _visibleAtTicks, value.UtcTicks);
    }

    /// <summary>SQS no longer knows this receipt handle (the visibility lapsed): the message may be delivered again.</summary>
    public bool Lost
    {
        get => _lost;
        set => _lost = value;
    }

    public int ReceiveCount =>
        SystemAttribute("ApproximateReceiveCount") is { } text && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count : 1;

    public string? GroupId => SystemAttribute("MessageGroupId");

    public string? DeduplicationId => SystemAttribute("MessageDeduplicationId");

    public string? StringAttribute(string name) =>
        Message.MessageAttributes is { } attributes && attributes.TryGetValue(name, out var value) ? value.StringValue : null;

    private string? SystemAttribute(string name) =>
        Message.Attributes is { } attributes && attributes.TryGetValue(name, out var value) ? value : null;
}
