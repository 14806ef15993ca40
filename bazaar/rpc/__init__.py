"""gRPC plumbing: servers, channels, the crossings to the reactor, message conversion."""
