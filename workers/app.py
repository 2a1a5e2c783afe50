"""The worker process: ``sessionsvc worker`` / ``python -m workers``.

Configures logging (JSON in production), refuses to start on bad settings, serves health and
metrics, starts the pub/sub forwarder, installs SIGTERM/SIGINT handlers and runs the loop.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from sessionsvc.config import load_settings
from sessionsvc.errors import ConfigError, StoreUnavailable
from sessionsvc.idp.mapping import default_user, load_mapper
from sessionsvc.logs import configure_logging

from .health import HealthServer
from .idp_services import IdpServices
from .metrics import WorkerMetrics
from .pubsub import PubSubForwarder
from .worker import Worker, WorkerOptions

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's command-line options (shared by both entry points)."""
    d = WorkerOptions()
    parser.add_argument("--consumer", help="consumer name in the group (default: host-pid)")
    parser.add_argument("--group", default=d.group, help="consumer group (default: workers)")
    parser.add_argument("--batch", type=int, default=d.batch, help="entries per read")
    parser.add_argument(
        "--claim-idle",
        type=float,
        default=d.claim_idle,
        help="seconds before a pending entry of a live consumer is reclaimed (a dead "
        "consumer's, one without a heartbeat, is claimed at once)",
    )
    parser.add_argument(
        "--max-deliveries",
        type=int,
        default=d.max_deliveries,
        help="attempts before an entry goes to the dead-letter stream",
    )
    parser.add_argument(
        "--publisher-rate",
        type=float,
        default=d.publisher_rate,
        help="events/s read from each publisher's intake (0: no limit); beyond, it waits",
    )
    parser.add_argument(
        "--dlq-max-len",
        type=int,
        default=d.dlq_max_len,
        help="dead letters kept (the newest; older ones are trimmed, counted and logged)",
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="health/metrics bind address")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /healthz /readyz /metrics on this port (0: any free port)",
    )
    parser.add_argument(
        "--no-pubsub", action="store_true", help="do not listen on the intake channels"
    )
    parser.add_argument(
        "--receiver-host",
        default="127.0.0.1",
        help="identity-provider receiver bind address (its own listener, not the metrics one)",
    )
    parser.add_argument(
        "--receiver-port",
        type=int,
        default=None,
        help="serve POST /backchannel-logout and /ssf/events to the identity providers of "
        "SESSIONSVC_IDPS on this port (0: any free port; default: no receiver)",
    )
    parser.add_argument(
        "--idp-user-mapper",
        default=None,
        metavar="MODULE:FUNCTION",
        help="maps an identity provider's subject to the local sub (default: its sub is ours)",
    )


def run(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM/SIGINT; 0 on a clean stop, 2 on bad configuration."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"sessionsvc worker: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.env)
    if settings.access_jwks is None:
        print(
            "sessionsvc worker: error: SESSIONSVC_ACCESS_JWKS is required: the worker accepts "
            "key.revoke only for kids of the configured key rings (public keys are enough)",
            file=sys.stderr,
        )
        return 2
    options = WorkerOptions(
        group=args.group,
        batch=args.batch,
        claim_idle=args.claim_idle,
        max_deliveries=args.max_deliveries,
        dlq_max_len=args.dlq_max_len,
        publisher_rate=args.publisher_rate,
    )
    if args.consumer:
        options.consumer = args.consumer
    metrics = WorkerMetrics()
    try:
        mapper = default_user if args.idp_user_mapper is None else load_mapper(args.idp_user_mapper)
        worker = Worker(settings, options, metrics=metrics, idp_user=mapper)
        idp = IdpServices.start(worker, host=args.receiver_host, port=args.receiver_port)
    except (ConfigError, StoreUnavailable, OSError) as exc:
        print(f"sessionsvc worker: error: {exc}", file=sys.stderr)
        return 2
    if idp.port is not None:
        print(f"identity-provider receiver on {args.receiver_host}:{idp.port}", file=sys.stderr)
    health = None
    if args.metrics_port is not None:
        health = HealthServer(worker.health, metrics.registry, args.metrics_host, args.metrics_port)
        health.start()
        print(f"metrics on http://{args.metrics_host}:{health.port}/metrics", file=sys.stderr)
    forwarder = None
    if not args.no_pubsub:
        forwarder = PubSubForwarder(
            settings, metrics, worker.health, dlq_max_len=options.dlq_max_len
        ).start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    try:
        return worker.run()
    except ConfigError as exc:  # found once connected (SESSIONSVC_DURABILITY=aof, AOF off)
        print(f"sessionsvc worker: error: {exc}", file=sys.stderr)
        return 2
    finally:
        idp.close()
        if forwarder is not None:
            forwarder.close()
        if health is not None:
            health.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m workers``."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
