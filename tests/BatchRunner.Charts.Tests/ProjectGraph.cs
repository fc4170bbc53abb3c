using System.Xml.Linq;

namespace BatchRunner.Charts.Tests;

/// <summary>The repository's project references, read from the .csproj files (paths relative to the repository root).</summary>
internal static class ProjectGraph
{
    /// <summary>The folders of <paramref name="project"/> and of every project it references, directly or not.</summary>
    public static IReadOnlyList<string> ReferencedFolders(string project)
    {
        var found = new List<string>();
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out var next))
        {
            var folder = Path.GetDirectoryName(next)!.Replace('\\', '/');
            if (found.Contains(folder))
            {
                continue;
            }

            found.Add(folder);
            foreach (var reference in DirectReferences(next))
            {
                pending.Push(reference);
            }
        }

        return found;
    }

    /// <summary>The projects <paramref name="project"/> references itself.</summary>
    public static IEnumerable<string> DirectReferences(string project)
    {
        var folder = Path.GetDirectoryName(Path.Combine(Helm.RepoRoot, project))!;
        return XDocument.Load(Path.Combine(Helm.RepoRoot, project)).Descendants("ProjectReference")
            .Select(r => r.Attribute("Include")!.Value.Replace('\\', '/'))
            .Select(include => Path.GetRelativePath(Helm.RepoRoot, Path.GetFullPath(Path.Combine(folder, include))).Replace('\\', '/'));
    }

    /// <summary>The packages <paramref name="project"/> references itself.</summary>
    public static IEnumerable<string> DirectPackages(string project) =>
        XDocument.Load(Path.Combine(Helm.RepoRoot, project)).Descendants("PackageReference").Select(r => r.Attribute("Include")!.Value);
}
