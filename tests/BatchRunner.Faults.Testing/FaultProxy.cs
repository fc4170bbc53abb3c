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
            var up = PumpAsync(client, server, delay: false, cutAfterFirstChunk: false);
            var down = PumpAsync(server, client, delay: true, cutAfterFirstChunk: truncate);
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

    private async Task PumpAsync(Socket from, Socket to, bool delay, bool cutAfterFirstChunk)
    {
        var buffer = new byte[16 * 1024];
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

                if (delay && Latency > TimeSpan.Zero)
                {
                    await Task.Delay(Latency, _stop.Token).ConfigureAwait(false);
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
