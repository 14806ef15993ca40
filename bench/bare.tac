# The baseline for the cached GET /stocks/<name>: a bare Klein route answering the very bytes
# and Content-Type the front end sends, in a twistd of its own, configured like the front end's
# site (no access log, no tracebacks), so the comparison measures the route, not the logging. Started as `twistd -n --logfile ... --pidfile '' -y bench/bare.tac`, with
# BENCH_BARE_PORT and BENCH_BARE_BODY (a file holding the body) in the environment.
import os

from klein import Klein
from twisted.application import internet, service
from twisted.web.server import Site


class Bare:
    app = Klein()

    def __init__(self, body: bytes, content_type: bytes) -> None:
        self.body = body
        self.content_type = content_type

    @app.route("/stocks/<name>", methods=["GET"])
    def stock(self, request, name):
        request.setHeader(b"Content-Type", self.content_type)
        return self.body


with open(os.environ["BENCH_BARE_BODY"], "rb") as f:
    body = f.read()
site = Site(Bare(body, os.environ["BENCH_BARE_CONTENT_TYPE"].encode()).app.resource())
site.displayTracebacks = False
site.log = lambda request: None  # the front end writes no access log unless asked to
application = service.Application("bazaar-bench-bare")
internet.TCPServer(int(os.environ["BENCH_BARE_PORT"]), site, interface="127.0.0.1").setServiceParent(application)
