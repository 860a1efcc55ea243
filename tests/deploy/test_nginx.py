"""``deploy/nginx/nginx.conf`` parsed against nginx's directive table (``crossplane``, from PyPI's
``nginx-crossplane``: unknown directives, directives in the wrong block, wrong argument counts
fail, as ``nginx -t`` would fail them; Debian's nginx 1.22 predates the upstream ``resolve`` this
config needs), then checked for what the deployment relies on: the replicas re-resolved through
Docker's DNS, retries on the next replica, and a health route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import crossplane

from tests.deploy.deploy_tools import DEPLOY

CONFIG = DEPLOY / "nginx" / "nginx.conf"


def parse(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = crossplane.parse(
        str(path), check_ctx=True, check_args=True, strict=True, single=True
    )
    return result


def blocks(tree: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Every directive called ``name`` anywhere below ``tree``."""
    found = []
    for directive in tree:
        if directive["directive"] == name:
            found.append(directive)
        found += blocks(directive.get("block", []), name)
    return found


def args(tree: list[dict[str, Any]], name: str) -> list[str]:
    (directive,) = blocks(tree, name)
    found: list[str] = directive["args"]
    return found


def test_the_config_parses_with_nginx_directives_only() -> None:
    result = parse(CONFIG)
    assert result["status"] == "ok", result["errors"]


def test_the_parser_rejects_a_broken_config(tmp_path: Path) -> None:
    text = CONFIG.read_text()
    for broken in (
        text.replace("proxy_next_upstream_tries 3;", "proxy_next_upstream_tris 3;"),
        text.replace("keepalive 64;", "keepalive 64;\n        listen 80;"),  # wrong block
        text.replace("proxy_connect_timeout 2s;", "proxy_connect_timeout;"),  # no argument
    ):
        copy = tmp_path / "nginx.conf"
        copy.write_text(broken)
        assert parse(copy)["status"] == "failed"


def test_replicas_are_resolved_through_dockers_dns_and_retried() -> None:
    tree = parse(CONFIG)["config"][0]["parsed"]
    assert args(tree, "resolver")[0] == "127.0.0.11"  # Docker's embedded DNS
    (upstream,) = blocks(tree, "upstream")
    name = upstream["args"][0]
    inside = upstream["block"]
    assert args(inside, "zone")[0] == name  # `resolve` needs a shared zone
    server = args(inside, "server")
    assert server[0] == "api:8000"
    assert "resolve" in server
    (location,) = [b for b in blocks(tree, "location") if b["args"] == ["/"]]
    assert args(location["block"], "proxy_pass") == [f"http://{name}"]
    retry = args(location["block"], "proxy_next_upstream")
    assert {"error", "timeout", "http_502", "http_503", "http_504"} <= set(retry)
    assert "non_idempotent" not in retry  # a POST that reached a replica is never resent
    health = [b for b in blocks(tree, "location") if b["args"] == ["=", "/nginx-health"]]
    assert health
    assert args(health[0]["block"], "return")[0] == "200"
