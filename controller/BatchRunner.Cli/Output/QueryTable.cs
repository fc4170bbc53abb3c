using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchRunner.Local.Query;

namespace BatchRunner.Cli.Output;

/// <summary>Rows to show a person (an aligned table) or a program (CSV, JSON).</summary>
public sealed class QueryTable(IReadOnlyList<string> columns, IReadOnlyList<object?[]> rows)
{
    public IReadOnlyList<string> Columns { get; } = columns;
    public IReadOnlyList<object?[]> Rows { get; } = rows;

    /// <summary>kubectl-style: a header, columns two spaces apart, numbers rounded for reading.</summary>
    public void WritePlain(TextWriter writer)
    {
        // A table is for reading on a terminal: values the workload wrote show their control characters, never act on them.
        var cells = Rows.Select(row => row.Select(v => BatchRunner.Core.Runs.TerminalText.Safe(FormatForReading(v))).ToArray()).ToList();
        var widths = Columns.Select((c, i) => Math.Max(BatchRunner.Core.Runs.TerminalText.Safe(c).Length, cells.Count == 0 ? 0 : cells.Max(r => r[i].Length))).ToArray();
        var numeric = Columns.Select((_, i) => Rows.Count > 0 && Rows.All(r => r[i] is null || IsNumber(r[i]!))).ToArray();
        writer.WriteLine(Line(Columns.Select(BatchRunner.Core.Runs.TerminalText.Safe).ToArray(), widths, numeric, header: true));
        foreach (var row in cells)
        {
            writer.WriteLine(Line(row, widths, numeric, header: false));
        }
    }

    /// <summary>RFC 4180 CSV with full precision.</summary>
    public void WriteCsv(TextWriter writer)
    {
        writer.WriteLine(string.Join(",", Columns.Select(EscapeCsv)));
        foreach (var row in Rows)
        {
            writer.WriteLine(string.Join(",", row.Select(v => v is null ? "" : EscapeCsv(FormatExact(v)))));
        }
    }

    /// <summary>A JSON array of objects, one per row, with full precision.</summary>
    public void WriteJson(TextWriter writer)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var row in Rows)
            {
                json.WriteStartObject();
                for (var i = 0; i < Columns.Count; i++)
                {
                    json.WritePropertyName(Columns[i]);
                    WriteJsonValue(json, row[i]);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        writer.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static string Line(string[] cells, int[] widths, bool[] numeric, bool header)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            var cell = numeric[i] && !header ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i]);
            builder.Append(cell);
            if (i < cells.Length - 1)
            {
                builder.Append("  ");
            }
        }

        return builder.ToString().TrimEnd();
    }

    private static bool IsNumber(object value) => value is sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal or System.Numerics.BigInteger;

    private static string FormatForReading(object? value) => value switch
    {
        null => "NULL",
        double d => d.ToString(Math.Abs(d) >= 1e6 || (Math.Abs(d) < 1e-4 && d != 0) ? "G4" : "0.####", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("0.####", CultureInfo.InvariantCulture),
        _ => FormatExact(value),
    };

    private static string FormatExact(object value) => value switch
    {
        string s => s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        DateTime t => t.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture),
        DateTimeOffset t => t.ToString("O", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        byte[] bytes => Convert.ToBase64String(bytes),
        _ => value.ToString() ?? "",
    };

    private static string EscapeCsv(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;

    private static void WriteJsonValue(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNullValue();
                break;
            case bool b:
                json.WriteBooleanValue(b);
                break;
            case double d when double.IsFinite(d):
                json.WriteNumberValue(d);
                break;
            case float f when float.IsFinite(f):
                json.WriteNumberValue(f);
                break;
            case long or int or short or sbyte or byte or ushort or uint or ulong or decimal:
                json.WriteRawValue(FormatExact(value!));
                break;
            case string s:
                json.WriteStringValue(s);
                break;
            case JsonText nested:
                json.WriteRawValue(nested.Json);
                break;
            default:
                json.WriteStringValue(FormatExact(value!));
                break;
        }
    }
}
