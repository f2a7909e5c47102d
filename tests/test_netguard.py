"""SSRF guard: article links from feeds never reach non-public addresses unless the operator allows them.

End to end only loopback is targeted (127.0.0.1, localhost, [::1]); every other range is proven at the
address check, with numeric hosts that resolve without any DNS query, so no request leaves the machine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlite_utils import Database

from bot.config import Config
from bot.cycle import Pipeline, run_cycle
from bot.errors import FetchError
from bot.feeds.pages import fetch_article_text
from bot.net.client import Limits
from bot.net.guard import (
    BlockedAddressError,
    check_scheme,
    is_allowed_address,
    make_guarded_client,
    parse_networks,
    resolve_allowed,
)
from tests.conftest import (
    NOW,
    FaultTally,
    LoopbackServer,
    conditional,
    ipv6_loopback_available,
    reply,
    rss,
    rss_item,
)

MakeConfig = Callable[..., Config]
MakePipeline = Callable[[Config], Pipeline]
PAGE = (
    b"<!doctype html><html><head><title>Afghan page</title></head><body><article><h1>Afghan page</h1>"
    + b"<p>The full article text about Afghan soldiers crossing the border near Chitral on Sunday night.</p>"
    * 5
    + b"</article></body></html>"
)
SUMMARY = "Afghan soldiers crossed; summary from the feed."


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "fe80::1", "fc00::1", "fd12:3456::1",
        "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b::7f00:1", "ff02::1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_allowed_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed_address(ipaddress.ip_address(address))


def test_allow_list_opens_exactly_its_ranges() -> None:
    allowed = parse_networks(["127.0.0.0/8", "10.1.0.0/16"])
    assert is_allowed_address(ipaddress.ip_address("127.0.0.1"), allowed)
    assert is_allowed_address(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert is_allowed_address(ipaddress.ip_address("10.1.2.3"), allowed)
    assert not is_allowed_address(ipaddress.ip_address("10.2.0.1"), allowed)
    assert not is_allowed_address(ipaddress.ip_address("169.254.169.254"), allowed)
    assert not is_allowed_address(ipaddress.ip_address("::1"), allowed)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "::ffff:127.0.0.1", "169.254.169.254",
     "10.0.0.1", "100.64.0.1", "0.0.0.0", "::1"],
)  # fmt: skip
def test_numeric_host_forms_are_resolved_then_refused(host: str) -> None:
    with pytest.raises(BlockedAddressError, match="refused non-public address"):
        resolve_allowed(host, 80, ())


def test_numeric_loopback_forms_pass_when_allowed() -> None:
    allowed = parse_networks(["127.0.0.0/8"])
    for host in ("2130706433", "0177.0.0.1", "0x7f.1", "localhost"):
        assert resolve_allowed(host, 80, allowed)[0] in ("127.0.0.1", "::ffff:127.0.0.1")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://127.0.0.1:70/1", "data:,x", "x"]
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddressError, match="refused scheme"):
        check_scheme(url)
    with make_guarded_client(parse_networks(["127.0.0.0/8"]), 2.0) as client:
        with pytest.raises((BlockedAddressError, FetchError)):
            fetch_article_text(client, url, Limits())


def test_redirect_to_a_file_url_is_refused(server: LoopbackServer) -> None:
    server.routes["/story"] = reply(b"", 302, {"Location": "file:///etc/passwd"})
    with make_guarded_client(parse_networks(["127.0.0.0/8"]), 2.0) as client:
        with pytest.raises(BlockedAddressError, match="refused scheme 'file'"):
            fetch_article_text(client, server.url("/story"), Limits())


def test_every_redirect_hop_is_checked(server: LoopbackServer) -> None:
    other = LoopbackServer("127.0.0.2").start()
    try:
        other.routes["/inside"] = reply(PAGE, content_type="text/html")
        server.routes["/story"] = reply(b"", 301, {"Location": other.url("/inside")})
        with make_guarded_client(parse_networks(["127.0.0.1/32"]), 2.0) as client:
            with pytest.raises(BlockedAddressError, match="127.0.0.2"):
                fetch_article_text(client, server.url("/story"), Limits())
        assert server.hits("/story") == 1 and other.hits("/inside") == 0
    finally:
        other.stop()


def loopback_links(server: LoopbackServer, v6: LoopbackServer | None) -> dict[str, str]:
    links = {
        "ip": server.url("/articles/ip.html"),
        "localhost": f"http://localhost:{server.port}/articles/localhost.html",
        "decimal": f"http://2130706433:{server.port}/articles/decimal.html",
    }
    if v6 is not None:
        links["ipv6"] = v6.url("/articles/ipv6.html")
    return links


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_article_links_to_loopback_are_not_fetched_without_the_allow_list(
    server: LoopbackServer,
    make_config: MakeConfig,
    make_pipeline: MakePipeline,
    db: Database,
    fault_tally: FaultTally,
    allowed: bool,
) -> None:
    v6 = LoopbackServer("::1").start() if ipv6_loopback_available() else None
    try:
        links = loopback_links(server, v6)
        for target in (server, v6):
            if target is not None:
                for name in links:
                    target.routes[f"/articles/{name}.html"] = reply(
                        PAGE, content_type="text/html; charset=utf-8"
                    )
        items = [
            rss_item(f"Afghan report via {name}", link, SUMMARY, guid=name) for name, link in links.items()
        ]
        server.routes["/feed.xml"] = conditional(rss("".join(items)))
        feed = {"name": "Hostile links", "url": server.url("/feed.xml"), "fetch_articles": True}
        network = {"allow_private": ["127.0.0.0/8", "::1/128"] if allowed else [], "timeout": 5}
        pipe = make_pipeline(make_config([feed], network=network))
        summary = run_cycle(pipe, now=NOW)

        page_hits = sum(t.hits(f"/articles/{n}.html") for t in (server, v6) if t is not None for n in links)
        stored = {
            r["guid"]: r for r in db.execute_returning_dicts("select guid, text, summary_only from articles")
        }
        assert summary.new == len(links) and set(stored) == set(links)
        if allowed:
            assert page_hits == len(links)
            assert all(
                r["summary_only"] == 0 and "full article text" in r["text"] for r in stored.values()
            ), stored
        else:
            fault_tally.record("ssrf: loopback article links", faults=len(links),
                               articles_lost=len(links) - len(stored))  # fmt: skip
            assert page_hits == 0
            assert all(r["summary_only"] == 1 and r["text"] == SUMMARY for r in stored.values())
            # The feed itself (configured by the operator) was fetched; only the pages were refused.
            assert server.hits("/feed.xml") == 1
    finally:
        if v6 is not None:
            v6.stop()


def test_a_refused_page_is_tried_again_when_the_entry_changes(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    link = server.url("/articles/a.html")
    server.routes["/articles/a.html"] = reply(PAGE, content_type="text/html")
    server.routes["/feed.xml"] = conditional(rss(rss_item("Afghan report", link, SUMMARY)))
    feed = {"name": "F", "url": server.url("/feed.xml"), "fetch_articles": True}
    pipe = make_pipeline(make_config([feed], network={"allow_private": []}))
    run_cycle(pipe, now=NOW)
    server.routes["/feed.xml"] = conditional(rss(rss_item("Afghan report", link, SUMMARY + " Updated.")))
    run_cycle(pipe, now=NOW + timedelta(minutes=10))
    assert server.hits("/articles/a.html") == 0
    row: dict[str, Any] = next(
        iter(db.execute_returning_dicts("select text, summary_only, version from articles"))
    )
    assert row == {"text": SUMMARY, "summary_only": 1, "version": 1}


def test_guarded_client_refuses_before_connecting(server: LoopbackServer) -> None:
    server.routes["/x"] = reply(PAGE, content_type="text/html")
    with make_guarded_client((), 2.0) as client, pytest.raises(httpx.ConnectError):
        client.get(server.url("/x"))
    assert server.hits("/x") == 0
