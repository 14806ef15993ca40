"""Bazaar: a replicated stock-trading service on Twisted and gRPC."""
