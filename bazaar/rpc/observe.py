"""Every call a gRPC server takes, timed and told with its status code (a server interceptor).

It is the outermost interceptor (Transport.observed), so it also sees the calls the role check
refuses. It knows nothing of how calls are counted: `record(method, code, seconds)` does that
(bazaar/metrics/rpc.py). A unary call is recorded when its handler returns or raises; a
response stream when its generator ends (closed early: CANCELLED); a non-blocking stream (the
health service's Watch) when the call terminates. The code is the one the handler set or
aborted with, else OK on return and UNKNOWN on an exception, as gRPC answers; a watch that
nobody ended with a code ran out of time (DEADLINE_EXCEEDED) or was cancelled.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable, Iterator

import grpc

Record = Callable[[str, grpc.StatusCode, float], None]


class CallObserver(grpc.ServerInterceptor):
    def __init__(self, record: Record) -> None:
        self._record = record

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        # An unknown method (None) is answered UNIMPLEMENTED by gRPC and counted by nobody: the
        # names a caller makes up must not become labels. No method of ours streams requests.
        if handler is None or handler.request_streaming:
            return handler
        method = details.method
        record = self._record
        if not handler.response_streaming:
            inner = handler.unary_unary

            def unary(request: Any, context: Any) -> Any:
                started = perf_counter()
                try:
                    response = inner(request, context)
                except BaseException:
                    record(method, context.code() or grpc.StatusCode.UNKNOWN, perf_counter() - started)
                    raise
                record(method, context.code() or grpc.StatusCode.OK, perf_counter() - started)
                return response

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
        inner_stream = handler.unary_stream
        if getattr(inner_stream, "experimental_non_blocking", False):
            def watch(request: Any, context: Any, send_response_callback: Any = None) -> Any:
                started = perf_counter()

                def ended() -> None:
                    record(method, context.code() or _watch_end(context), perf_counter() - started)

                if not context.add_callback(ended):
                    ended()  # the call has ended already
                return inner_stream(request, context, send_response_callback)

            watch.experimental_non_blocking = True  # type: ignore[attr-defined]
            return grpc.unary_stream_rpc_method_handler(watch, handler.request_deserializer, handler.response_serializer)

        def stream(request: Any, context: Any) -> Iterator[Any]:
            started = perf_counter()
            code: grpc.StatusCode | None = None
            try:
                yield from inner_stream(request, context)
            except GeneratorExit:
                code = grpc.StatusCode.CANCELLED
                raise
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                record(method, code or context.code() or grpc.StatusCode.OK, perf_counter() - started)

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)


def _watch_end(context: Any) -> grpc.StatusCode:
    """How a watch ended that no handler gave a code: a watch is only ever ended by its caller."""
    left = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if left is not None and left <= 0 else grpc.StatusCode.CANCELLED
