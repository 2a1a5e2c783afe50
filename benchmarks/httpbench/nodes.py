"""sessionsvc's contenders with their revocation trials: two nodes in this process and one in
another (``--node-worker``)."""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time

from httpbench.ceilings import asgi_client, asgi_pair, ceilings
from httpbench.common import ENTRY, Contender, Trial, _Worker, bearer, chase, quiet_logs
from httpbench.djangoapp import (
    django_ceiling,
    django_clients,
    django_get,
    django_project,
    django_request,
)
from httpbench.ours import (
    Node,
    new_jwks,
    pyjwt_fastapi,
    pyjwt_trial,
    sessionsvc_django,
    sessionsvc_fastapi,
    sessionsvc_fastapi_middleware,
    sessionsvc_flask,
    sessionsvc_settings,
    werkzeug_request,
)


def two_node_trial(a: Node, b: Node | None, other: NodeProcess | None, fw: str) -> Trial:
    """A fresh session on ``a``, used on every node; logout on ``a``; chase on ``a`` ("same"),
    ``b`` ("second": this process) or ``other``'s node ("process": another process)."""

    def trial(node: str) -> tuple[float | None, int]:
        token = a.login()
        fresh = [a.get(token)] + ([] if b is None else [b.get(token)])
        if other is not None:
            fresh.append(other.ask(cmd="get", fw=fw, token=token))
        if any(status != 200 for status in fresh):
            raise RuntimeError("a fresh token was refused")
        a.logout(token)
        since = time.monotonic_ns()
        if node == "process":
            if other is None:
                return None, 0
            delay, served = other.ask(cmd="chase", fw=fw, token=token, since=since)
            return delay, served
        target = a if node == "same" or b is None else b
        return chase(lambda: target.get(token), since=since)

    return trial


class NodeProcess(_Worker):
    """Another process (this virtualenv) with a FastAPI and a Flask sessionsvc node, each
    following the same Redis: the second node as a deployment has it, with its own GIL."""

    def __init__(self, redis_url: str, jwks: dict[str, str]) -> None:
        config = json.dumps(
            {"redis_url": redis_url, "jwks": jwks, "switch_interval": sys.getswitchinterval()}
        )
        script = str(ENTRY)
        super().__init__([sys.executable, script, "--node-worker", config], "the node subprocess")
        self._read()


def node_worker(config: str) -> int:
    """The other process's nodes (FastAPI, Flask, Django): ``get`` (one GET), ``chase``
    (from the caller's clock)."""
    quiet_logs()
    cfg = json.loads(config)
    sys.setswitchinterval(cfg["switch_interval"])  # (the same as the benchmark's process)
    settings, web = sessionsvc_settings(cfg["redis_url"], cfg["jwks"])
    with contextlib.ExitStack() as stack:
        fastapi_node = Node(asgi_client(stack, sessionsvc_fastapi(settings, web)).request)
        app, auth = sessionsvc_flask(settings, web)
        stack.callback(auth.close)
        django_auth = django_project(lambda: sessionsvc_django(settings, web))
        django_client = django_clients()[1]
        stack.callback(django_auth.close)
        nodes = {
            "fastapi": fastapi_node,
            "flask": Node(werkzeug_request(app.test_client())),
            "django": Node(django_request(django_client)),
        }
        gc.collect()
        gc.freeze()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            node = nodes.get(cmd.get("fw", ""))
            if node is None:
                break
            token = cmd["token"]
            if cmd["cmd"] == "get":
                print(json.dumps(node.get(token)), flush=True)
            else:
                since = cmd["since"]
                answer = chase(lambda n=node, t=token: n.get(t), since=since)
                print(json.dumps(answer), flush=True)
    return 0


def local_contenders(
    stack: contextlib.ExitStack, redis_url: str, other_process: bool
) -> tuple[list[Contender], dict[str, str]]:
    """sessionsvc's and PyJWT's contenders, the ceilings; the keys the nodes use."""
    jwks = new_jwks()
    settings, web = sessionsvc_settings(redis_url, jwks)
    other = None
    if other_process:
        other = NodeProcess(redis_url, jwks)
        stack.callback(other.close)
    fa_a, fa_b = (asgi_client(stack, sessionsvc_fastapi(settings, web)) for _ in range(2))
    fa_nodes = Node(fa_a.request), Node(fa_b.request)
    fa_token = fa_nodes[0].login()
    result = ceilings(stack, "", bearer(fa_token))

    flask_apps = [sessionsvc_flask(settings, web) for _ in range(2)]
    for _, auth in flask_apps:
        stack.callback(auth.close)
    fl_nodes = [Node(werkzeug_request(app.test_client())) for app, _ in flask_apps]
    fl_token = fl_nodes[0].login()
    for nodes, token in ((fa_nodes, fa_token), (fl_nodes, fl_token)):
        nodes[1].get(token)  # (the second node's first request: a Flask feed starts there)
    pyjwt = asgi_client(stack, pyjwt_fastapi(settings))
    middleware = asgi_client(stack, sessionsvc_fastapi_middleware(settings, web))
    django_auth = django_project(lambda: sessionsvc_django(settings, web))
    dj_ceiling, dj_ours = django_clients()
    stack.callback(django_auth.close)
    dj_node = Node(django_request(dj_ours))
    dj_token = dj_node.login()
    processes = ("same", "second", "process") if other else ("same", "second")
    result += [
        *asgi_pair(
            "fastapi_sessionsvc",
            fa_a,
            bearer(fa_token),
            trial=two_node_trial(*fa_nodes, other, "fastapi"),
            nodes=processes,
        ),
        *asgi_pair("fastapi_sessionsvc_mw", middleware, bearer(fa_token)),
        Contender(
            "flask_sessionsvc",
            lambda: fl_nodes[0].get(fl_token),
            two_node_trial(*fl_nodes, other, "flask"),
            nodes=processes,
        ),
        Contender("django_noauth", django_ceiling(dj_ceiling, dj_token)),
        Contender(
            "django_sessionsvc",
            django_get(dj_ours, "/api/me", bearer(dj_token)),
            two_node_trial(dj_node, None, other, "django"),
            nodes=processes[::2],  # (one Django project per process: no second one here)
        ),
        *asgi_pair("fastapi_pyjwt", pyjwt, bearer(fa_token), trial=pyjwt_trial(pyjwt, fa_token)),
    ]
    return result, jwks
