using System.Text;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// BatchRunner's tenants and priorities in the terms of an AWS Batch fair-share job queue, whose own scheduler then
/// shares the queue (its scheduling policy's weights and decay apply): a namespace is a share identifier, a priority
/// a scheduling priority.
/// </summary>
public static class AwsFairShare
{
    /// <summary>Middle of AWS Batch's scheduling priorities (0 to 9999, higher first): where priority 0 lands.</summary>
    private const int Middle = 5000;

    /// <summary>The namespace as a share identifier: letters, digits and underscores (a namespace's '-' and '.' become '_').</summary>
    public static string ShareIdentifierOf(string ns)
    {
        var text = new StringBuilder(ns.Length);
        foreach (var c in ns)
        {
            text.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }

        return text.Length > 255 ? text.ToString(0, 255) : text.ToString();
    }

    /// <summary>
    /// <c>spec.priority</c> as AWS Batch's scheduling priority: 5000 plus the priority, within 0 to 9999; a class
    /// name by the classes every queue has (low, normal, high), else the middle.
    /// </summary>
    public static int PriorityOf(BatchJobSpec spec)
    {
        var priority = spec.PriorityClass is { } name ? QueueDefinition.BuiltInPriorityClasses.GetValueOrDefault(name) : spec.Priority;
        return (int)Math.Clamp((long)Middle + priority, 0, 9999);
    }
}
