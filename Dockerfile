# One image for every Bazaar service; the command picks the service (deploy/compose.yaml, or
# the arguments of `docker run bazaar ...`). The recipe is docs/deploy.md.
#
#   /etc/bazaar/bazaar.toml   the cluster's configuration (mounted; deploy/bazaar.toml)
#   /etc/bazaar/certs/        tls.dir: ca.pem and this service's <name>.pem and <name>.key (mounted)
#   /var/lib/bazaar/          data_dir: the service's store (a volume)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The package alone (no test or evaluation extras), from a copy that is removed again. Then
# Twisted's plugin cache, written now: the service's user cannot write site-packages.
COPY pyproject.toml README.md LICENSE /src/
COPY bazaar /src/bazaar
COPY twisted /src/twisted
RUN pip install /src \
    && rm -rf /src \
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"

# A fixed uid: key files mounted from the host must belong to it (chown 10001, docs/deploy.md).
RUN groupadd --system --gid 10001 bazaar \
    && useradd --system --uid 10001 --gid bazaar --home-dir /var/lib/bazaar --no-create-home \
       --shell /usr/sbin/nologin bazaar \
    && mkdir -p /var/lib/bazaar /etc/bazaar/certs \
    && chown bazaar:bazaar /var/lib/bazaar

USER bazaar
WORKDIR /var/lib/bazaar
VOLUME ["/var/lib/bazaar"]

# In the foreground, logging to stdout, no pid file: the container engine supervises.
ENTRYPOINT ["twistd", "-n", "--pidfile="]
CMD ["bazaar-catalog", "--config", "/etc/bazaar/bazaar.toml"]
