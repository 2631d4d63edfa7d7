"""The `ainfera-dispatch` console script: operations on the database and the processes to run.

The command line is the top layer (pyproject's import contracts): it starts the worker by
importing it, and the gateway by uvicorn's factory string (uvicorn imports it in each of its
processes). Nothing below imports the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from shared.cli import database
from shared.settings import Settings


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


# --- processes -----------------------------------------------------------------------------


def _gateway(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from shared.logging import configure_logging

    configure_logging(settings, process="gateway")
    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=args.host or settings.gateway_host,
        port=args.port or settings.gateway_port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from shared.logging import configure_logging
    from shared.tracing import install_tracer_provider
    from worker.main import run_worker  # the command line is the top layer (see the import contracts)

    configure_logging(settings, process="worker")
    install_tracer_provider(settings, process="worker")
    run_worker(settings, queues=args.queue)


def _sim(settings: Settings, args: argparse.Namespace) -> None:
    from shared.logging import configure_logging
    from shared.simulator.server import run

    configure_logging(settings, process="sim-provider")
    if args.latency_ms is not None:
        settings = settings.model_copy(update={"sim_latency_ms": args.latency_ms})
    if args.port is not None:
        settings = settings.model_copy(update={"sim_port": args.port})
    run(settings)


def _services(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli.services import ensure_services, ensure_tool

    problems = ensure_services(settings.session_database_url, settings.redis_url)
    problems += sum(not ensure_tool(tool) for tool in args.tool or [])
    raise SystemExit(1 if problems else 0)


def _up(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli.up import run_up

    raise SystemExit(run_up(settings, simulate=args.simulate))


def _audit(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import audit

    if args.audit_cmd == "verify":
        raise SystemExit(_run(audit.verify_local(settings, args.tenant)))
    key = args.api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not key:
        raise SystemExit("error: give --api-key or set AINFERA_API_KEY")
    raise SystemExit(audit.verify_from_api(args.base_url or settings.gateway_url, key, args.tenant))


def _create_key(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import api_keys

    _print_json(_run(api_keys.create(settings, args.tenant, name=args.name, expires_at=args.expires_at,
                                     settings_json=args.settings)))


def _keys(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import api_keys
    from shared.cli.up import ensure_signing_key

    if args.keys_cmd == "create":
        _create_key(settings, args)
        return
    if args.keys_cmd == "list":
        _print_json(_run(api_keys.list_keys(settings, args.tenant)))
        return
    if args.keys_cmd == "revoke":
        _print_json(_run(api_keys.revoke(settings, args.tenant, args.key_id)))
        return

    ensure_signing_key(settings)
    print(settings.signing_key_file if settings.signing_key is None else "AINFERA_SIGNING_KEY is set", file=sys.stderr)


def _fanout(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import fanout
    from shared.errors import AinferaError

    try:
        if args.fanout_cmd == "run":
            raise SystemExit(_run(fanout.run_fanout(settings, args.provider, args.wait)))
        raise SystemExit(_run(fanout.report(settings, args.run_id)))
    except AinferaError as e:
        raise SystemExit(f"error: {e.message}") from None


def _spend(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import spend

    raise SystemExit(_run(spend.report(settings, args.tenant, args.group_by, args.start, args.end)))


# --- batch client ------------------------------------------------------------------------


def _batch(settings: Settings, args: argparse.Namespace) -> None:
    from shared.cli import batch

    api_key = args.api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not api_key:
        parser: argparse.ArgumentParser = args.parser
        parser.error("no API key: pass --api-key or set AINFERA_API_KEY")
    base_url = args.base_url or settings.gateway_url
    if args.batch_cmd == "submit":
        raise SystemExit(batch.run(lambda: batch.submit(
            base_url, api_key, args.file, wait=args.wait, metadata=dict(args.metadata) or None,
            idempotency_key=args.idempotency_key)))
    raise SystemExit(batch.run(lambda: batch.results(base_url, api_key, args.batch_id, args.output, args.errors)))


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _add_batch_parsers(sub: Any) -> None:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--base-url", help="the gateway (default: http://AINFERA_GATEWAY_HOST:AINFERA_GATEWAY_PORT)")
    client.add_argument("--api-key", help="a tenant API key (default: the AINFERA_API_KEY environment variable, "
                                          "which keeps it out of process listings)")
    batch = sub.add_parser("batch", help="submit batch files to a gateway and fetch their results")
    cmds = batch.add_subparsers(dest="batch_cmd", required=True)
    bs = cmds.add_parser("submit", parents=[client],
                         help="upload a JSONL file and create a batch (prints the batch JSON on stdout)")
    bs.add_argument("file", type=Path, metavar="FILE.jsonl")
    bs.add_argument("--wait", action="store_true",
                    help="follow the batch until it ends; exit 0 only if it completed")
    bs.add_argument("--metadata", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                    help="batch metadata (repeatable)")
    bs.add_argument("--idempotency-key", metavar="K",
                    help="retrying with the same key and file creates no second file or batch")
    bs.set_defaults(parser=bs)
    br = cmds.add_parser("results", parents=[client], help="download a finished batch's output (and error) file")
    br.add_argument("batch_id", metavar="BATCH_ID")
    br.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.jsonl")
    br.add_argument("--errors", type=Path, metavar="ERR.jsonl", help="also download the error file, if any")
    br.set_defaults(parser=br)


# --- argument parsing ----------------------------------------------------------------------


def _add_key_create_arguments(kcr: argparse.ArgumentParser) -> None:
    kcr.add_argument("--tenant", required=True, help="tenant id")
    kcr.add_argument("--name", help="a name to recognise the key by (1 to 200 characters)")
    kcr.add_argument("--expires-at", metavar="TS",
                     help="RFC 3339 time the key stops working, e.g. 2027-01-31T00:00:00Z")
    kcr.add_argument("--settings", metavar="JSON",
                     help='the key\'s settings, e.g. \'{"allowed_models": ["ainfera-auto"], "daily_budget_usd": 5}\'')



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ainfera-dispatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    services = sub.add_parser("services", help="make sure Postgres and Redis answer (start or install local ones)")
    services.add_argument("--tool", action="append", choices=["pgbouncer", "chromium", "chromium-driver"],
                          help="also make sure this package is installed (from the distribution's packages)")
    sub.add_parser("migrate", help="create the database if needed and apply pending migrations")
    sub.add_parser("seed-catalog", help="upsert the researched catalog (17 providers, 130 models)")
    sub.add_parser("schema", help="rewrite migrations/schema.sql from a scratch database the migrations build")

    tenant = sub.add_parser("tenant", help="tenant operations").add_subparsers(dest="tenant_cmd", required=True)
    tc = tenant.add_parser("create", help="create a tenant and its first API key (printed once)")
    tc.add_argument("--name", required=True)
    tp = tenant.add_parser("set-policy", help="replace a tenant's spend policy (validated against the catalog)")
    tp.add_argument("--tenant", required=True, help="tenant id")
    tp.add_argument("--policy", required=True,
                    help='JSON, e.g. \'{"banned_providers": ["deepseek"], "max_cost_per_call_usd": 0.05}\'')

    key = sub.add_parser("key", help="API key operations (older spelling of `keys create`)").add_subparsers(
        dest="key_cmd", required=True)
    _add_key_create_arguments(key.add_parser("create", help="create another API key for a tenant (printed once)"))

    spend = sub.add_parser("spend", help="a tenant's spend").add_subparsers(dest="spend_cmd", required=True)
    sr = spend.add_parser("report", help="spend from receipts as a table, as GET /v1/usage computes it")
    sr.add_argument("--tenant", required=True, help="tenant id")
    sr.add_argument("--group-by", choices=("day", "model", "key"), default="day")
    sr.add_argument("--from", dest="start", metavar="FROM",
                    help="RFC 3339 time or YYYY-MM-DD (UTC), inclusive (default: 30 days before --to)")
    sr.add_argument("--to", dest="end", metavar="TO",
                    help="RFC 3339 time, exclusive, or YYYY-MM-DD including that day (default: now)")

    gw = sub.add_parser("gateway", help="run the HTTP gateway")
    gw.add_argument("--host")
    gw.add_argument("--port", type=int)
    gw.add_argument("--workers", type=int, default=1, help="gateway processes (default 1)")

    wk = sub.add_parser("worker", help="run a dispatch worker")
    wk.add_argument("--queue", action="append", help="queue(s) to serve (default: all)")

    sim = sub.add_parser("sim-provider", help="run the simulated provider")
    sim.add_argument("--latency-ms", type=float)
    sim.add_argument("--port", type=int)

    up = sub.add_parser("up", help="migrate, seed, create a demo key, and run everything in the foreground")
    up.add_argument("--simulate", choices=("auto", "always", "never"), default="auto",
                    help="run the simulated provider: auto = when no provider keys are set")

    _add_batch_parsers(sub)
    audit = sub.add_parser("audit", help="verify a tenant's audit chain")
    acmds = audit.add_subparsers(dest="audit_cmd", required=True)
    av = acmds.add_parser("verify", help="from the database: every link and hash; the first bad seq")
    av.add_argument("--tenant", required=True, help="tenant id")
    ar = acmds.add_parser("verify-remote",
                          help="as a customer, through the API: chain, signed checkpoint, receipt signatures")
    ar.add_argument("--base-url", help="the gateway (default: the configured one)")
    ar.add_argument("--api-key", help="a tenant API key (default: AINFERA_API_KEY)")
    ar.add_argument("--tenant", help="tenant id (default: the key's own)")
    keys = sub.add_parser("keys", help="a tenant's API keys (create, list, revoke) and the signing key (generate)")
    kcmds = keys.add_subparsers(dest="keys_cmd", required=True)
    kcmds.add_parser("generate", help="create the signing key file named by AINFERA_SIGNING_KEY_FILE if missing")
    _add_key_create_arguments(kcmds.add_parser("create", help="create an API key for a tenant (printed this once)"))
    kls = kcmds.add_parser("list", help="a tenant's API keys, newest first (prefix and metadata, never the key)")
    kls.add_argument("--tenant", required=True, help="tenant id")
    krv = kcmds.add_parser("revoke", help="revoke an API key (every gateway refuses it within a second)")
    krv.add_argument("--tenant", required=True, help="tenant id")
    krv.add_argument("key_id", metavar="KEY_ID", help="the key's id (from keys list)")
    fanout = sub.add_parser("fanout", help="probe catalog models and switch rows from the evidence")
    fcmds = fanout.add_subparsers(dest="fanout_cmd", required=True)
    fr = fcmds.add_parser("run", help="start a probe run (a worker serving the probe queue runs it)")
    fr.add_argument("--provider", help="probe only this provider's models")
    fr.add_argument("--wait", action="store_true", help="wait for the run's decisions and print its report")
    frep = fcmds.add_parser("report", help="per-provider table of a run (default: the latest)")
    frep.add_argument("run_id", nargs="?", metavar="RUN")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    handlers: dict[str, Callable[[], Any]] = {
        "services": lambda: _services(settings, args),
        "migrate": lambda: _run(database.migrate_database(settings)),
        "seed-catalog": lambda: _run(database.seed(settings)),
        "schema": lambda: print(_run(database.write_schema(settings))),
        "tenant": lambda: _print_json(
            _run(database.tenant_create(settings, args.name)) if args.tenant_cmd == "create"
            else _run(database.set_policy(settings, args.tenant, args.policy))
        ),
        "key": lambda: _create_key(settings, args),
        "spend": lambda: _spend(settings, args),
        "gateway": lambda: _gateway(settings, args),
        "worker": lambda: _worker(settings, args),
        "sim-provider": lambda: _sim(settings, args),
        "up": lambda: _up(settings, args),
        "batch": lambda: _batch(settings, args),
        "fanout": lambda: _fanout(settings, args),
        "audit": lambda: _audit(settings, args),
        "keys": lambda: _keys(settings, args),
    }
    handlers[args.command]()


if __name__ == "__main__":
    main()
