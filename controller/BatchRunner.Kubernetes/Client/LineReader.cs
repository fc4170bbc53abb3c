using System.Buffers;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Newline-separated lines of a stream as UTF-8 bytes, without decoding them to text (a watch's events are JSON that
/// is decoded from the bytes). A line is valid until the next read. A line longer than the limit is an error, so a
/// stream that never sends a newline cannot take all memory.
/// </summary>
internal sealed class LineReader(Stream stream, int maxLineBytes) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(64 * 1024, maxLineBytes));
    private int _start;
    private int _end;

    // Bytes after _start already searched for a newline: a long line is searched once, not once per read.
    private int _searched;

    /// <summary>The next line without its newline (a last line without one included), or null at the end of the stream.</summary>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync(CancellationToken cancellation)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start + _searched, _end - _start - _searched).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = _buffer.AsMemory(_start, _searched + newline);
                _start += _searched + newline + 1;
                _searched = 0;
                return line;
            }

            _searched = _end - _start;
            if (_searched > maxLineBytes)
            {
                throw new InvalidDataException($"a line of more than {maxLineBytes} bytes (the most this stream's lines may have)");
            }

            MakeRoom();
            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellation).ConfigureAwait(false);
            if (read == 0)
            {
                if (_end == _start)
                {
                    return null;
                }

                var last = _buffer.AsMemory(_start, _end - _start);
                _start = _end;
                _searched = 0;
                return last;
            }

            _end += read;
        }
    }

    /// <summary>Moves the unfinished line to the buffer's start, and grows the buffer if the line fills it.</summary>
    private void MakeRoom()
    {
        var pending = _end - _start;
        if (_start > 0)
        {
            _buffer.AsSpan(_start, pending).CopyTo(_buffer);
            (_start, _end) = (0, pending);
        }

        if (_end == _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, maxLineBytes + 1));
            _buffer.AsSpan(0, pending).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
