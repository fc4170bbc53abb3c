using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Store;

/// <summary>What an attempt's output holds: files, bytes, result rows, malformed lines and the first problem.</summary>
public sealed record OutputSummary(int Files, long Bytes, long Rows, long Malformed, string? Note)
{
    public static readonly OutputSummary Empty = new(0, 0, 0, 0, null);

    /// <summary>The row with this summary's counts and note.</summary>
    public LedgerRow ApplyTo(LedgerRow row) => row with
    {
        OutputFiles = Files,
        OutputBytes = Bytes,
        OutputRows = Rows,
        OutputMalformed = Malformed,
        OutputNote = Note,
    };
}

/// <summary>
/// Reads result files as the <c>results</c> table will, one line at a time (a file of any size costs one line of
/// memory), counting the rows it will hold and the lines it will leave out, with the first such line named. JSON
/// lines must each be one JSON object; blank lines are skipped. CSV rows are counted after the header.
/// </summary>
public static class OutputInspector
{
    /// <summary>Lines longer than this are counted as malformed without being parsed (DuckDB's default object limit).</summary>
    public const int MaxLineBytes = 16 * 1024 * 1024;

    public static string Extension(ResultsFormat format) => format == ResultsFormat.Csv ? "csv" : "jsonl";

    /// <summary>Inspects the files of one attempt, given as (relative name, size, opener); files that are not result files count only as files and bytes.</summary>
    public static OutputSummary Inspect(IEnumerable<(string Name, long Size, Func<Stream> Open)> files, ResultsFormat format) =>
        Inspect(files, format, []);

    /// <param name="leftOut">Entries of the folder that are not regular files (links, FIFOs, devices), with what each is: they are named in the note.</param>
    public static OutputSummary Inspect(IEnumerable<(string Name, long Size, Func<Stream> Open)> files, ResultsFormat format, IReadOnlyList<(string Name, string Kind)> leftOut)
    {
        var extension = "." + Extension(format);
        int count = 0, resultFiles = 0;
        long bytes = 0, rows = 0, malformed = 0;
        string? firstProblem = null;
        foreach (var (name, size, open) in files.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            count++;
            bytes += size;
            if (!name.EndsWith(extension, StringComparison.Ordinal))
            {
                continue;
            }

            resultFiles++;
            using var stream = open();
            var (fileRows, fileMalformed, problem) = format == ResultsFormat.Csv ? CountCsv(stream) : CountJsonLines(stream);
            rows += fileRows;
            malformed += fileMalformed;
            if (firstProblem is null && problem is not null)
            {
                firstProblem = $"{name} {problem}";
            }
        }

        string? note = null;
        if (malformed > 0)
        {
            note = string.Create(CultureInfo.InvariantCulture, $"{malformed} malformed line(s) left out of results; first: {firstProblem}");
        }
        else if (resultFiles == 0)
        {
            note = count == 0 ? "no output: the workload wrote no files" : $"no {extension} files: the workload wrote no result rows";
        }
        else if (rows == 0)
        {
            note = $"no rows: the {extension} files are empty";
        }

        if (leftOut.Count > 0)
        {
            var named = string.Join(", ", leftOut.Take(3).Select(e => $"{e.Name} ({e.Kind})")) + (leftOut.Count > 3 ? ", …" : "");
            var leftOutNote = string.Create(CultureInfo.InvariantCulture, $"{leftOut.Count} output entr{(leftOut.Count == 1 ? "y" : "ies")} that are not regular files left out, not read: {named}");
            note = note is null ? leftOutNote : $"{note}; {leftOutNote}";
        }

        return new OutputSummary(count, bytes, rows, malformed, note);
    }

    private static (long Rows, long Malformed, string? Problem) CountJsonLines(Stream stream)
    {
        long rows = 0, malformed = 0, lineNumber = 0;
        string? problem = null;
        var buffer = new byte[64 * 1024];
        var line = new MemoryStream();
        var tooLong = false;

        void EndLine()
        {
            lineNumber++;
            var span = line.GetBuffer().AsSpan(0, (int)line.Length);
            var error = tooLong ? $"is longer than {MaxLineBytes:N0} bytes" : Check(span);
            if (error == "")
            {
                // Blank line: skipped, as DuckDB does.
            }
            else if (error is null)
            {
                rows++;
            }
            else
            {
                malformed++;
                problem ??= string.Create(CultureInfo.InvariantCulture, $"line {lineNumber}: {error}");
            }

            line.SetLength(0);
            tooLong = false;
        }

        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var chunk = buffer.AsSpan(0, read);
            while (chunk.Length > 0)
            {
                var newline = chunk.IndexOf((byte)'\n');
                var part = newline < 0 ? chunk : chunk[..newline];
                if (!tooLong && line.Length + part.Length <= MaxLineBytes)
                {
                    line.Write(part);
                }
                else
                {
                    tooLong = true;
                    line.SetLength(0);
                }

                if (newline < 0)
                {
                    break;
                }

                EndLine();
                chunk = chunk[(newline + 1)..];
            }
        }

        if (line.Length > 0 || tooLong)
        {
            EndLine();
        }

        return (rows, malformed, problem);
    }

    /// <summary>"" for a blank line, null for one JSON object, else what is wrong.</summary>
    private static string? Check(ReadOnlySpan<byte> line)
    {
        var trimmed = line.Trim("\r\t "u8);
        if (trimmed.IsEmpty)
        {
            return "";
        }

        if (!System.Text.Unicode.Utf8.IsValid(trimmed))
        {
            // DuckDB leaves such a line out of the table (the reader here would take it): counted as it is left.
            return "not valid UTF-8";
        }

        try
        {
            var reader = new Utf8JsonReader(trimmed);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return $"not a JSON object: {Excerpt(trimmed)}";
            }

            reader.Skip();
            return reader.Read() ? $"more than one JSON value on the line: {Excerpt(trimmed)}" : null;
        }
        catch (JsonException e)
        {
            return $"not valid JSON ({FirstSentence(e.Message)}): {Excerpt(trimmed)}";
        }
    }

    /// <summary>CSV rows as the <c>results</c> table takes them (<see cref="CsvRows"/>).</summary>
    private static (long Rows, long Malformed, string? Problem) CountCsv(Stream stream)
    {
        long rows = 0, malformed = 0;
        string? problem = null;
        foreach (var row in CsvRows.Read(stream, header =>
                 {
                     if (header.HeaderError is not null)
                     {
                         problem = string.Create(CultureInfo.InvariantCulture, $"line {header.HeaderLine}: the header cannot be read ({header.HeaderError}), so no row of the file is read");
                     }
                 }))
        {
            if (row.Error is null)
            {
                rows++;
            }
            else
            {
                malformed++;
                problem ??= string.Create(CultureInfo.InvariantCulture, $"line {row.Line}: {row.Error}");
            }
        }

        return (rows, malformed, problem);
    }

    private static string Excerpt(ReadOnlySpan<byte> line)
    {
        const int max = 80;
        var text = Encoding.UTF8.GetString(line[..Math.Min(line.Length, max)]);
        return line.Length > max ? $"\"{text}…\"" : $"\"{text}\"";
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message.TrimEnd('.') : message[..end];
    }
}
