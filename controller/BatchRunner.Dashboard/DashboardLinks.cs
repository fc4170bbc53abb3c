namespace BatchRunner.Dashboard;

/// <summary>
/// The dashboard's addresses under its prefix. Every name is one escaped path segment or query value, so a name
/// with <c>?</c>, <c>#</c>, spaces or markup in it links to itself and to nothing else.
/// </summary>
public sealed class DashboardLinks(string prefix)
{
    public string Prefix { get; } = prefix.TrimEnd('/');

    public string Overview => Prefix + "/";

    public string BatchJob(string ns, string name) => $"{Prefix}/namespaces/{Segment(ns)}/batchjobs/{Segment(name)}";

    public string Report(string ns, string name) => BatchJob(ns, name) + "/report";

    public string Log(string ns, string name, long index, long attempt) => $"{BatchJob(ns, name)}/indexes/{index}/attempts/{attempt}/log";

    public string Queue(string name) => $"{Prefix}/queues/{Segment(name)}";

    public string Asset(string file) => $"{Prefix}/assets/{file}";

    public string BatchJobs(BatchJobFilter filter)
    {
        var query = new List<string>();
        Add(query, "namespace", filter.Namespace);
        Add(query, "queue", filter.Queue);
        Add(query, "q", filter.Text);
        Add(query, "phase", filter.Phase);
        if (filter.Page > 1)
        {
            Add(query, "page", filter.Page.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return $"{Prefix}/batchjobs" + (query.Count == 0 ? "" : "?" + string.Join('&', query));
    }

    private static string Segment(string value) => Uri.EscapeDataString(value);

    private static void Add(List<string> query, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            query.Add($"{name}={Uri.EscapeDataString(value)}");
        }
    }
}
