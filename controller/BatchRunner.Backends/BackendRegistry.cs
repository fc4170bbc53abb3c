using System.Diagnostics.CodeAnalysis;
using BatchRunner.Core.Spec;

namespace BatchRunner.Backends;

/// <summary>
/// The backends a host has, by name: the one place both hosts (the controller, for all its doors, and the CLI)
/// look a BatchJob's <c>spec.backend</c> up. A backend the host knows but cannot run here (AWS Batch without its
/// settings, Kubernetes from the CLI) is registered as disabled, with why, so the error says what to do.
/// </summary>
public sealed class BackendRegistry
{
    private readonly Dictionary<Backend, Lazy<IBatchBackend>> _enabled;
    private readonly Dictionary<Backend, string> _disabled;

    /// <param name="host">How errors name this host: "this controller", "the batchrunner CLI".</param>
    public BackendRegistry(string host, IEnumerable<IBatchBackend> backends, IEnumerable<DisabledBackend>? disabled = null)
        : this(host, backends.Select(b => (b.Backend, (Func<IBatchBackend>)(() => b))), disabled)
    {
    }

    /// <summary>Backends made when first asked for (a CLI run makes only the one its spec names).</summary>
    public BackendRegistry(string host, IEnumerable<(Backend Backend, Func<IBatchBackend> Create)> backends, IEnumerable<DisabledBackend>? disabled = null)
    {
        Host = host;
        _enabled = new Dictionary<Backend, Lazy<IBatchBackend>>();
        foreach (var (backend, create) in backends)
        {
            if (!_enabled.TryAdd(backend, new Lazy<IBatchBackend>(create)))
            {
                throw new ArgumentException($"backend {backend} is registered twice", nameof(backends));
            }
        }

        // The first reason given for a backend is the one said (a host's own before a library's default).
        _disabled = new Dictionary<Backend, string>();
        foreach (var (backend, why) in disabled ?? [])
        {
            if (!_enabled.ContainsKey(backend))
            {
                _disabled.TryAdd(backend, why);
            }
        }
    }

    public string Host { get; }

    /// <summary>The backends this host runs, in the order they were registered.</summary>
    public IReadOnlyList<Backend> Names => [.. _enabled.Keys];

    public bool TryResolve(Backend backend, [NotNullWhen(true)] out IBatchBackend? found, [NotNullWhen(false)] out SpecError? error)
    {
        error = Check(backend);
        found = error is null ? _enabled[backend].Value : null;
        return error is null;
    }

    /// <summary>Why a BatchJob naming <paramref name="backend"/> cannot run here, naming <c>spec.backend</c>; null when it can. Makes nothing.</summary>
    public SpecError? Check(Backend backend)
    {
        if (_enabled.ContainsKey(backend))
        {
            return null;
        }

        var has = _enabled.Count == 0 ? "none" : string.Join(", ", _enabled.Keys.Select(b => b.Name));
        return _disabled.TryGetValue(backend, out var why)
            ? new SpecError("spec.backend", $"{backend.Name} is not enabled in {Host}: {why} (backends here: {has})")
            : new SpecError("spec.backend", $"{backend.Name} is not a backend of {Host} (backends here: {has})");
    }

    /// <summary>A BatchJob is gone: every backend made so far forgets what it kept in memory of it.</summary>
    public void Forget(string ns, string name)
    {
        foreach (var backend in _enabled.Values.Where(b => b.IsValueCreated))
        {
            backend.Value.Forget(ns, name);
        }
    }

    /// <summary>The backend, or an <see cref="InvalidSpecException"/> naming <c>spec.backend</c> and the backends here.</summary>
    public IBatchBackend Resolve(Backend backend) =>
        TryResolve(backend, out var found, out var error) ? found : throw new InvalidSpecException([error]);
}

/// <summary>A backend a host knows but does not run, and why (what setting turns it on, or which door to use).</summary>
public sealed record DisabledBackend(Backend Backend, string Why);
