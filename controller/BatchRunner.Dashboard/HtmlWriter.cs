using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace BatchRunner.Dashboard;

/// <summary>Markup written by the dashboard itself, appended as it is (everything else is encoded).</summary>
public readonly record struct Raw(string Value);

/// <summary>
/// Builds a page from interpolated strings whose every hole is HTML-encoded, unless it is <see cref="Raw"/> markup or
/// another writer: a name, message or reason can never become markup, however it was spelled, and no call site has to
/// remember to encode.
/// </summary>
public sealed class HtmlWriter
{
    private readonly StringBuilder _text = new();

    public HtmlWriter Add([InterpolatedStringHandlerArgument("")] ref Handler handler)
    {
        _ = handler;
        return this;
    }

    public override string ToString() => _text.ToString();

    public static string Encode(string? value) => HtmlEncoder.Default.Encode(value ?? "");

    [InterpolatedStringHandler]
    public ref struct Handler
    {
        private readonly StringBuilder _text;

        public Handler(int literalLength, int formattedCount, HtmlWriter writer)
        {
            _ = literalLength + formattedCount;
            _text = writer._text;
        }

        public readonly void AppendLiteral(string value) => _text.Append(value);

        public readonly void AppendFormatted(Raw markup) => _text.Append(markup.Value);

        public readonly void AppendFormatted(HtmlWriter fragment) => _text.Append(fragment._text);

        public readonly void AppendFormatted(string? value) => _text.Append(Encode(value));

        public readonly void AppendFormatted<T>(T value) => _text.Append(Encode(Convert.ToString(value, CultureInfo.InvariantCulture)));

        public readonly void AppendFormatted<T>(T value, string format)
            where T : IFormattable => _text.Append(Encode(value.ToString(format, CultureInfo.InvariantCulture)));
    }
}
