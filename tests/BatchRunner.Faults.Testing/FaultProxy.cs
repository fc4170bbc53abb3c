using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace BatchRunner.Faults.Testing;

/// <summary>The kinds of fault a <see cref="FaultProxy"/> injects.</summary>
public enum FaultKind
{
    /// <summary>Every chunk from the server waits a while before it goes on.</summary>
    Latency,

    /// <summary>Every open connection is reset (RST), as a server that crashed or a middlebox that dropped them.</summary>
    Reset,

    /// <summary>New connections are refused for a while, as a server restarting.</summary>
    Refused,

    /// <summary>A connection's response stops after its first chunk and the connection is reset.</summary>
    Truncated,

    /// <summary>A connection's request is answered by the proxy with an HTTP error (a 503 SlowDown, a 429, a 500) and closed; plain HTTP only.</summary>
    Answered,

    /// <summary>A request reaches the server and is done there, but its answer is lost (the connection reset before any of it): the caller cannot tell whether it was done.</summary>
    Lost,

    /// <summary>A request's connection is reset while its body goes up, after part of it: the client has read that much of the body; the server never gets it whole.</summary>
    CutMidBody,
}

/// <summary>An HTTP answer the proxy gives instead of the server's: a throttle or an error, as real servers send them.</summary>
public sealed record HttpAnswer(int Status, string Reason, string ContentType, string Body, int? RetryAfterSeconds = null)
{
    /// <summary>S3 throttling a client.</summary>
    public static HttpAnswer S3SlowDown { get; } = new(503, "Slow Down", "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");

    /// <summary>S3 failing inside.</summary>
    public static HttpAnswer S3InternalError { get; } = new(500, "Internal Server Error", "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>");

    /// <summary>An AWS JSON-protocol service (SQS) unavailable for a moment.</summary>
    public static HttpAnswer JsonServiceUnavailable { get; } = new(503, "Service Unavailable", "application/x-amz-json-1.0",
        "{\"__type\":\"com.amazonaws.sqs#ServiceUnavailable\",\"message\":\"Service is unavailable. Try again later.\"}");

    /// <summary>Too many requests, with when to come back.</summary>
    public static HttpAnswer TooManyRequests { get; } = new(429, "Too Many Requests", "application/json", "{\"message\":\"Too Many Requests\"}", RetryAfterSeconds: 1);

    public byte[] Bytes() => System.Text.Encoding.ASCII.GetBytes(
        $"HTTP/1.1 {Status} {Reason}\r\nContent-Type: {ContentType}\r\nContent-Length: {System.Text.Encoding.UTF8.GetByteCount(Body)}\r\n"
        + (RetryAfterSeconds is { } seconds ? $"Retry-After: {seconds}\r\n" : "") + "Connection: close\r\n\r\n")
        .Concat(System.Text.Encoding.UTF8.GetBytes(Body)).ToArray();
}

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of one server: what a client sends and what the server answers pass through
/// untouched (TLS too: the client still verifies the server's certificate, which names 127.0.0.1), until a fault is
/// asked for. Each fault injected is counted by kind, for the scenario's report.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly IPEndPoint _upstream;
    private readonly ConcurrentDictionary<long, (Socket Client, Socket Server)> _open = new();
    private readonly ConcurrentDictionary<FaultKind, int> _injected = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private TcpListener _listener;
    private Task _accepting;
    private long _nextConnection;
    private int _truncateNext;
    private readonly ConcurrentQueue<HttpAnswer> _answers = new();
    private readonly ConcurrentQueue<string> _answeredHeads = new();
    private readonly ConcurrentDictionary<string, int> _loseAnswersTo = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _cutBodiesTo = new(StringComparer.Ordinal);

    private FaultProxy(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = Listen(0);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_listener);
    }

    /// <summary>The proxy's port on 127.0.0.1: point the client here instead of at the server.</summary>
    public int Port { get; }

    /// <summary>How long each chunk from the server waits before it goes on (zero: none).</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Connections accepted so far.</summary>
    public long Connections => Interlocked.Read(ref _nextConnection);

    /// <summary>Faults injected so far, by kind.</summary>
    public IReadOnlyDictionary<FaultKind, int> Injected => _injected.ToDictionary(p => p.Key, p => p.Value);

    public static FaultProxy Start(IPEndPoint upstream) => new(upstream);

    /// <summary>Delays every chunk from the server by <paramref name="latency"/> for <paramref name="period"/>.</summary>
    public async Task SlowForAsync(TimeSpan latency, TimeSpan period, CancellationToken cancellation = default)
    {
        Latency = latency;
        Count(FaultKind.Latency);
        try
        {
            await Task.Delay(period, cancellation).ConfigureAwait(false);
        }
        finally
        {
            Latency = TimeSpan.Zero;
        }
    }

    /// <summary>Resets every open connection (RST to both ends).</summary>
    public void ResetAll()
    {
        foreach (var (id, pair) in _open)
        {
            if (_open.TryRemove(id, out _))
            {
                Abort(pair.Client);
                Abort(pair.Server);
            }
        }

        Count(FaultKind.Reset);
    }

    /// <summary>Refuses new connections for <paramref name="period"/> (and resets the open ones: the server went away), then listens again on the same port.</summary>
    public async Task RefuseForAsync(TimeSpan period, CancellationToken cancellation = default)
    {
        lock (_gate)
        {
            _listener.Stop();
        }

        ResetAll();
        Count(FaultKind.Refused);
        try
        {
            await Task.Delay(period, cancellation).ConfigureAwait(false);
        }
        finally
        {
            await ListenAgainAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Back on the same port; while it was closed another socket may have taken it for a moment (an ephemeral port), so a few tries.</summary>
    private async Task ListenAgainAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                lock (_gate)
                {
                    if (!_stop.IsCancellationRequested)
                    {
                        _listener = Listen(Port);
                        _accepting = AcceptAsync(_listener);
                    }
                }

                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 50)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The next <paramref name="connections"/> requests on new connections get <paramref name="answer"/> from the proxy
    /// instead of the server's (plain HTTP only). Open connections are closed first, as a server closes idle
    /// keep-alive connections, so a client's next calls open new ones and meet the answers.
    /// </summary>
    public void AnswerNext(int connections, HttpAnswer answer)
    {
        for (var i = 0; i < connections; i++)
        {
            _answers.Enqueue(answer);
        }

        foreach (var (_, pair) in _open)
        {
            Close(pair.Client);
            Close(pair.Server);
        }
    }

    /// <summary>
    /// The next <paramref name="times"/> requests whose request line names <paramref name="path"/> (e.g. <c>/v1/submitjob</c>)
    /// reach the server, but their answers are lost: the client's connection is reset before any byte of them (plain HTTP only).
    /// </summary>
    public void LoseAnswersTo(string path, int times) => _loseAnswersTo.AddOrUpdate(path, times, (_, left) => left + times);

    /// <summary>
    /// The next <paramref name="times"/> requests whose request line names <paramref name="path"/> have their connection
    /// reset once <see cref="CutBodyAfterBytes"/> of their body went up (plain HTTP only): the client has read that much of
    /// the body it sends, and the server never gets the rest.
    /// </summary>
    public void CutBodiesTo(string path, int times) => _cutBodiesTo.AddOrUpdate(path, times, (_, left) => left + times);

    /// <summary>How much of a body <see cref="CutBodiesTo"/> lets through before the reset.</summary>
    public int CutBodyAfterBytes { get; set; } = 64 * 1024;

    /// <summary>The heads (request line and headers) of the requests the proxy answered itself (<see cref="AnswerNext"/>), in order.</summary>
    public IReadOnlyList<string> AnsweredRequestHeads => [.. _answeredHeads];

    /// <summary>The next <paramref name="connections"/> connections get the first chunk of their response only, then a reset.</summary>
    public void TruncateNext(int connections) => Interlocked.Exchange(ref _truncateNext, connections);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _listener.Stop();
        }

        foreach (var (_, pair) in _open)
        {
            Abort(pair.Client);
            Abort(pair.Server);
        }

        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private static TcpListener Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        return listener;
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        var id = Interlocked.Increment(ref _nextConnection);
        if (_answers.TryDequeue(out var answer))
        {
            await AnswerAsync(client, answer).ConfigureAwait(false);
            return;
        }

        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await server.ConnectAsync(_upstream, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            Abort(client);
            server.Dispose();
            return;
        }

        var truncate = Interlocked.Decrement(ref _truncateNext) >= 0;
        _open[id] = (client, server);
        try
        {
            var losing = new LosingAnswer();
            var up = PumpAsync(client, server, downstream: false, cutAfterFirstChunk: false, losing);
            var down = PumpAsync(server, client, downstream: true, cutAfterFirstChunk: truncate, losing);
            await Task.WhenAny(up, down).ConfigureAwait(false);
        }
        finally
        {
            if (_open.TryRemove(id, out _))
            {
                // One side ended: end the other as a proxy that lost its peer does.
                Close(client);
                Close(server);
            }
        }
    }

    /// <summary>Reads the request (its head, and as much body as it declares), answers it and closes the connection.</summary>
    private async Task AnswerAsync(Socket client, HttpAnswer answer)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var received = new List<byte>();
            var buffer = new byte[16 * 1024];
            int headEnd;
            while ((headEnd = IndexOfHeadEnd(received)) < 0)
            {
                var read = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    Close(client);
                    return;
                }

                received.AddRange(buffer.AsSpan(0, read));
            }

            var head = System.Text.Encoding.ASCII.GetString(received.GetRange(0, headEnd).ToArray());
            _answeredHeads.Enqueue(head);
            var declared = head.Split("\r\n").Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                .Select(p => long.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
            for (var left = declared - (received.Count - headEnd - 4); left > 0;)
            {
                var read = await client.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                left -= read;
            }

            await client.SendAsync(answer.Bytes(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            Count(FaultKind.Answered);
            Close(client);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Abort(client);
        }
    }

    private static int IndexOfHeadEnd(List<byte> bytes)
    {
        for (var i = 3; i < bytes.Count; i++)
        {
            if (bytes[i - 3] == '\r' && bytes[i - 2] == '\n' && bytes[i - 1] == '\r' && bytes[i] == '\n')
            {
                return i - 3;
            }
        }

        return -1;
    }

    /// <summary>Set when a request on the connection went up whose answer is to be lost (HTTP/1.1 clients send the next request only after the last answer).</summary>
    private sealed class LosingAnswer
    {
        public volatile bool Next;
    }

    /// <summary>Passes bytes from one side to the other: requests up, answers <paramref name="downstream"/> (where latency applies).</summary>
    private async Task PumpAsync(Socket from, Socket to, bool downstream, bool cutAfterFirstChunk, LosingAnswer losing)
    {
        var buffer = new byte[16 * 1024];
        var bytesLeftBeforeCut = -1L;
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                if (!downstream && !(_loseAnswersTo.IsEmpty && _cutBodiesTo.IsEmpty) && RequestLine(buffer.AsSpan(0, read)) is { } line)
                {
                    if (TakeOne(_loseAnswersTo, line))
                    {
                        losing.Next = true;
                    }
                    else if (TakeOne(_cutBodiesTo, line))
                    {
                        var headEnd = buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8);
                        bytesLeftBeforeCut = CutBodyAfterBytes + (headEnd < 0 ? read : headEnd + 4);
                    }
                }
                else if (downstream && losing.Next)
                {
                    Count(FaultKind.Lost);
                    Abort(from);
                    Abort(to);
                    return;
                }

                if (downstream && Latency > TimeSpan.Zero)
                {
                    await Task.Delay(Latency, _stop.Token).ConfigureAwait(false);
                }

                if (bytesLeftBeforeCut >= 0)
                {
                    if (read >= bytesLeftBeforeCut)
                    {
                        await to.SendAsync(buffer.AsMemory(0, (int)bytesLeftBeforeCut), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                        Count(FaultKind.CutMidBody);
                        Abort(from);
                        Abort(to);
                        return;
                    }

                    bytesLeftBeforeCut -= read;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (cutAfterFirstChunk)
                {
                    Count(FaultKind.Truncated);
                    Abort(from);
                    Abort(to);
                    return;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The other side went, or a fault reset it.
        }
    }

    /// <summary>The request line the chunk starts with, when it starts a request.</summary>
    private static string? RequestLine(ReadOnlySpan<byte> chunk)
    {
        var lineEnd = chunk.IndexOf("\r\n"u8);
        var line = System.Text.Encoding.ASCII.GetString(lineEnd < 0 ? chunk : chunk[..lineEnd]);
        return line.EndsWith(" HTTP/1.1", StringComparison.Ordinal) ? line : null;
    }

    /// <summary>Takes one of the faults left for a path the request line names, if any is left.</summary>
    private static bool TakeOne(ConcurrentDictionary<string, int> faultsByPath, string requestLine)
    {
        foreach (var (path, left) in faultsByPath)
        {
            if (left > 0 && requestLine.Contains(' ' + path, StringComparison.Ordinal) && faultsByPath.TryUpdate(path, left - 1, left))
            {
                return true;
            }
        }

        return false;
    }

    private void Count(FaultKind kind) => _injected.AddOrUpdate(kind, 1, (_, n) => n + 1);

    private static void Abort(Socket socket)
    {
        try
        {
            // Linger 0: close sends RST, not FIN.
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }

    private static void Close(Socket socket)
    {
        try
        {
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }
}
