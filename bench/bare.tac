# The baselines: bare Klein routes in a twistd of their own, configured like the front end's site
# (no access log, no tracebacks, no form parsing of POST bodies), so that each comparison
# measures the route, not the logging:
#   GET /stocks/<name>    the very bytes, Content-Type and Content-Length of a cached stock lookup;
#   GET /orders/<number>  the very bytes of one order lookup, whatever the number;
#   POST /orders          parses the body as JSON, checks its three fields, and answers what a
#                         trade answers: the Idempotency-Key header sent back and
#                         {"data": {"transaction_number": n}}, n counting up.
# Started as `twistd -n --logfile ... --pidfile '' -y bench/bare.tac`, with BENCH_BARE_PORT,
# BENCH_BARE_BODY and BENCH_BARE_ORDER_BODY (files holding the bodies) and
# BENCH_BARE_CONTENT_TYPE in the environment.
import json
import os

from klein import Klein
from twisted.application import internet, service
from twisted.web.server import Site

FIELDS = ("name", "quantity", "type")


class Bare:
    app = Klein()

    def __init__(self, body: bytes, order_body: bytes, content_type: bytes) -> None:
        self.body = body
        self.order_body = order_body
        self.content_type = content_type
        self.placed = 0

    @app.route("/stocks/<name>", methods=["GET"])
    def stock(self, request, name):
        return self._answer(request, self.body)

    @app.route("/orders/<number>", methods=["GET"])
    def order(self, request, number):
        return self._answer(request, self.order_body)

    def _answer(self, request, body):
        # As the front end answers: its length given, so not written in HTTP/1.1 chunks.
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Content-Length", b"%d" % len(body))
        return body

    @app.route("/orders", methods=["POST"])
    def place(self, request):
        key = request.getHeader(b"idempotency-key")
        if key is not None:
            request.setHeader(b"Idempotency-Key", key)
        try:
            order = json.loads(request.content.read())
        except ValueError:
            order = None
        if not isinstance(order, dict) or any(field not in order for field in FIELDS):
            request.setResponseCode(400)
            return self._answer(request, json.dumps({"error": {"code": 400, "message": "bad order"}}).encode())
        number, self.placed = self.placed, self.placed + 1
        return self._answer(request, json.dumps({"data": {"transaction_number": number}}).encode("utf-8"))


def _read(variable: str) -> bytes:
    with open(os.environ[variable], "rb") as f:
        return f.read()


bare = Bare(_read("BENCH_BARE_BODY"), _read("BENCH_BARE_ORDER_BODY"), os.environ["BENCH_BARE_CONTENT_TYPE"].encode())
site = Site(bare.app.resource(), parsePOSTFormSubmission=False)
site.displayTracebacks = False
site.log = lambda request: None  # the front end writes no access log unless asked to
application = service.Application("bazaar-bench-bare")
internet.TCPServer(int(os.environ["BENCH_BARE_PORT"]), site, interface="127.0.0.1").setServiceParent(application)
