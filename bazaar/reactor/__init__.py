"""Reactor-side helpers: batching, group commit, waiting for a counter, running a command."""
