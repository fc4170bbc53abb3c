using BatchRunner.Kubernetes.Testing;
using Xunit;

namespace BatchRunner.ControlPlane.Tests;

/// <summary>Every test class of this assembly shares one control plane.</summary>
[CollectionDefinition(ControlPlaneCollection.Name)]
public sealed class ControlPlaneCollectionDefinition : ICollectionFixture<ControlPlaneFixture>;
