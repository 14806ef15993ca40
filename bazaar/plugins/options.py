"""What every Bazaar twistd plugin accepts: --config, checked before anything starts."""

from __future__ import annotations

from twisted.python import usage

from bazaar.plugins import logs
from bazaar.plugins.runtime import ProcessRoot
from bazaar.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from bazaar.rpc.transport import Transport
from bazaar.tls.files import TlsError


class ConfigOptions(usage.Options):
    optParameters = [
        ["config", "c", DEFAULT_CONFIG_PATH, "Cluster configuration file (TOML); built-in defaults if absent."],
        ["log-format", None, "text", f"The log's format: {' or '.join(logs.FORMATS)} (one object per line)."],
        ["log-level", None, "info", f"Log events at this level and above: {', '.join(logs.LEVELS)}."],
    ]

    def postOptions(self) -> None:
        for key, allowed in (("log-format", logs.FORMATS), ("log-level", logs.LEVELS)):
            if self[key] not in allowed:
                raise usage.UsageError(f"--{key}: expected one of {', '.join(allowed)}, got {self[key]!r}")
        try:
            self["cluster"] = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None

    def root(self) -> ProcessRoot:
        """The plugin's root service, which sets up the log as these options say."""
        return ProcessRoot(getattr(self, "parent", None), self["log-format"], self["log-level"])

    def identify(self, name: str) -> None:
        """Read this process's credentials (its certificate's name is `name`): a process
        without them does not start."""
        try:
            self["transport"] = Transport.for_process(self.cluster, name)
        except TlsError as e:
            raise usage.UsageError(str(e)) from None

    @property
    def cluster(self) -> Config:
        return self["cluster"]

    @property
    def transport(self) -> Transport:
        return self["transport"]
