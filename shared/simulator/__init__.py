"""The simulated provider: every catalog provider at its real host and path, in one ASGI process.

`server.create_app` builds the app (tests), `server.run` serves it (the CLI); fault
directives are documented in `directives`, the control API in `control`.
"""
