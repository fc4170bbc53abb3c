using Xunit;

namespace BatchRunner.Kubernetes.Testing;

/// <summary>
/// One <see cref="ControlPlane"/> shared by every test of a collection. xunit finds collection definitions only in
/// the test assembly itself, so each test assembly declares the collection with one line:
/// <code>
/// [CollectionDefinition(ControlPlaneCollection.Name)]
/// public sealed class ControlPlaneCollectionDefinition : ICollectionFixture&lt;ControlPlaneFixture&gt;;
/// </code>
/// and its test classes take the fixture in their constructor under <c>[Collection(ControlPlaneCollection.Name)]</c>.
/// Tests of the collection run one after another; give each its own namespace.
/// </summary>
public sealed class ControlPlaneFixture : IAsyncLifetime
{
    private ControlPlane? controlPlane;

    /// <summary>The running control plane (started before the collection's first test).</summary>
    public ControlPlane ControlPlane => controlPlane ?? throw new InvalidOperationException("the control plane is not started");

    /// <inheritdoc />
    public async Task InitializeAsync() => controlPlane = await ControlPlane.StartAsync();

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (controlPlane is not null)
        {
            await controlPlane.DisposeAsync();
        }
    }
}

/// <summary>The name of the xunit collection that shares a <see cref="ControlPlaneFixture"/>.</summary>
public static class ControlPlaneCollection
{
    /// <summary>Use with <c>[Collection(ControlPlaneCollection.Name)]</c> and <c>[CollectionDefinition(...)]</c>.</summary>
    public const string Name = "Kubernetes control plane";
}
