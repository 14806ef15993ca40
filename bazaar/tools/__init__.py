"""The `bazaar` command and what it drives: the client, the local cluster."""
