"""Talking to upstream providers: one adapter per wire format (no I/O) and one transport that sends.

Callers use `registry.adapter_for`, `transport.send`, `transport.RetryPolicy` and
`transport.create_http_client`; the value types live in `types`.
"""
