"""`python -m shared.simulator`: serve the simulated provider with settings from the environment."""

from __future__ import annotations

from shared.logging import configure_logging
from shared.settings import Settings
from shared.simulator.server import run


def main() -> None:
    settings = Settings()
    configure_logging(settings, process="simulator")
    run(settings)


if __name__ == "__main__":
    main()
