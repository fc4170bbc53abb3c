using System.Text;

namespace BatchRunner.Core.Store;

/// <summary>One CSV record: its fields, or why it is not one (then <see cref="Fields"/> is empty).</summary>
public readonly record struct CsvRecord(long Line, IReadOnlyList<string> Fields, string? Error)
{
    public bool IsBlank => Error is null && Fields.Count == 1 && Fields[0].Length == 0;
}

/// <summary>
/// The one CSV dialect of result files, as the <c>results</c> view asks DuckDB to read it (comma, double quote, a
/// doubled quote inside quotes, no sniffing): records end at a newline outside quotes (a CR before it is dropped);
/// a quoted field must end at a comma or the end of its record; a quote inside an unquoted field is a character;
/// a record that is not UTF-8, or whose quote never closes, is malformed. Reads a line's worth at a time, so a file
/// of any size costs one record of memory; a record longer than <see cref="MaxRecordBytes"/> is malformed unread.
/// </summary>
public static class CsvRecords
{
    public const int MaxRecordBytes = 16 * 1024 * 1024;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private enum State
    {
        FieldStart,
        Unquoted,
        Quoted,
        AfterQuote,
        AfterQuotedField,
    }

    public static IEnumerable<CsvRecord> Read(Stream stream)
    {
        var buffer = new byte[64 * 1024];
        var record = new MemoryStream();
        var state = State.FieldStart;
        var tooLong = false;
        long line = 1, recordLine = 1;
        var first = true;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var start = 0;
            if (first)
            {
                first = false;
                if (read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF)
                {
                    start = 3;
                }
            }

            for (var i = start; i < read; i++)
            {
                var b = buffer[i];
                if (b == (byte)'\n')
                {
                    line++;
                }

                // Where the record ends: at a newline outside quotes. Parse then splits it into fields by the same rules.
                switch (state)
                {
                    case State.Quoted:
                        state = b == (byte)'"' ? State.AfterQuote : State.Quoted;
                        break;
                    case State.AfterQuote when b == (byte)'"':
                        state = State.Quoted;
                        break;
                    case State.AfterQuotedField when b != (byte)'\n':
                        break;
                    case State.FieldStart or State.AfterQuote or State.Unquoted or State.AfterQuotedField when b == (byte)'\n':
                        yield return Parse(record, tooLong, recordLine);
                        record.SetLength(0);
                        tooLong = false;
                        recordLine = line;
                        state = State.FieldStart;
                        continue;
                    case State.FieldStart or State.AfterQuote or State.Unquoted when b == (byte)',':
                        state = State.FieldStart;
                        break;
                    case State.FieldStart when b == (byte)'"':
                        state = State.Quoted;
                        break;
                    case State.AfterQuote:
                        state = State.AfterQuotedField;
                        break;
                    default:
                        state = State.Unquoted;
                        break;
                }

                if (record.Length < MaxRecordBytes)
                {
                    record.WriteByte(b);
                }
                else
                {
                    tooLong = true;
                }
            }
        }

        if (state == State.Quoted)
        {
            yield return new CsvRecord(recordLine, [], "a quoted field never closes");
        }
        else if (record.Length > 0 || tooLong)
        {
            yield return Parse(record, tooLong, recordLine);
        }
    }

    private static CsvRecord Parse(MemoryStream record, bool tooLong, long line)
    {
        if (tooLong)
        {
            return new CsvRecord(line, [], $"is longer than {MaxRecordBytes:N0} bytes");
        }

        var bytes = record.GetBuffer().AsSpan(0, (int)record.Length);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
        }

        string text;
        try
        {
            text = Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return new CsvRecord(line, [], "not valid UTF-8");
        }

        var fields = new List<string>();
        var field = new StringBuilder();
        var i = 0;
        while (true)
        {
            field.Clear();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (true)
                {
                    var quote = text.IndexOf('"', i);
                    field.Append(text, i, quote - i);
                    i = quote + 1;
                    if (i < text.Length && text[i] == '"')
                    {
                        field.Append('"');
                        i++;
                        continue;
                    }

                    break;
                }

                if (i < text.Length && text[i] != ',')
                {
                    return new CsvRecord(line, [], "text follows a quoted field's closing quote");
                }
            }
            else
            {
                var comma = text.IndexOf(',', i);
                var end = comma < 0 ? text.Length : comma;
                field.Append(text, i, end - i);
                i = end;
            }

            fields.Add(field.ToString());
            if (i >= text.Length)
            {
                return new CsvRecord(line, fields, null);
            }

            i++; // the comma
            if (i == text.Length)
            {
                fields.Add("");
                return new CsvRecord(line, fields, null);
            }
        }
    }
}

/// <summary>The keys of a CSV file's columns: its header's names, a name repeated within the header as NAME_2, NAME_3, ….</summary>
public static class CsvHeader
{
    public static List<string> Keys(IReadOnlyList<string> header)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var keys = new List<string>(header.Count);
        foreach (var name in header)
        {
            var key = name;
            for (var suffix = 2; !used.Add(key); suffix++)
            {
                key = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{name}_{suffix}");
            }

            keys.Add(key);
        }

        return keys;
    }
}

/// <summary>A CSV result file as the <c>results</c> table takes it: its header, and each record a row or left out with why.</summary>
/// <param name="HeaderError">Why the first record is no header (then no record of the file is a row).</param>
public sealed record CsvTable(IReadOnlyList<string>? Header, string? HeaderError, long HeaderLine);

/// <summary>One record after the header: a row (<see cref="Fields"/>) or left out (<see cref="Error"/>).</summary>
public readonly record struct CsvRow(long Line, IReadOnlyList<string>? Fields, string? Error);

/// <summary>
/// The one rule for which records of a CSV result file are rows, shared by the ledger's count and the table's
/// loading: the first record is the header; a record of its width is a row; a blank line is skipped, except in a
/// one-column file, where it is a row with an empty value; anything else is left out and counted.
/// </summary>
public static class CsvRows
{
    public static IEnumerable<CsvRow> Read(Stream stream, Action<CsvTable> header)
    {
        int? width = null;
        string? headerError = null;
        foreach (var record in CsvRecords.Read(stream))
        {
            if (width is null && headerError is null)
            {
                headerError = record.Error;
                width = record.Error is null ? record.Fields.Count : null;
                header(new CsvTable(record.Error is null ? record.Fields : null, record.Error, record.Line));
                continue;
            }

            if (headerError is not null)
            {
                yield return new CsvRow(record.Line, null, "the header cannot be read");
            }
            else if (record.Error is not null)
            {
                yield return new CsvRow(record.Line, null, record.Error);
            }
            else if (record.IsBlank && width > 1)
            {
                // A blank line between rows: no row, nothing wrong.
            }
            else if (record.Fields.Count != width)
            {
                yield return new CsvRow(record.Line, null, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{record.Fields.Count} field(s) where the header has {width}"));
            }
            else
            {
                yield return new CsvRow(record.Line, record.Fields, null);
            }
        }
    }
}
