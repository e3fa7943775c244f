"""The live views' shared refresh budget (`lab_ui/live.py`), by hand-worked numbers: how often a tab refreshes, from
its script's CPU cost, where its browser draws, how many tabs watch and how much CPU the machine leaves idle."""

from __future__ import annotations

import os

import pytest

from lab_ui import live


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the share: 5% of 2 CPUs = 0.1 CPU for all the tabs watching


def test_a_refresh_costs_a_local_browser_thirteen_times_its_script_and_a_remote_one_three(two_cpus: None) -> None:
    # A local browser: 0.03 CPU-s of script × (3 server + 10 drawing) = 0.39 CPU-s a refresh; in 0.1 CPU: every 3.9 s.
    assert live.refresh_interval(0.03, active=True) == pytest.approx(3.9)
    # A remote one costs this machine only the server's part: 0.03 × 3 = 0.09 CPU-s, every 0.9 s: the 2 s floor.
    assert live.refresh_interval(0.03, active=True, local=False) == live.REFRESH_S == 2.0
    # Three remote tabs at 0.05 CPU-s share the 0.1 CPU: each 3 × 0.15 / 0.1 = 4.5 s.
    assert live.refresh_interval(0.05, active=True, watchers=3, local=False) == pytest.approx(4.5)
    assert live.refresh_interval(0.05, active=False) == live.IDLE_REFRESH_S == 10.0  # nothing trains


def test_a_machine_with_idle_cpus_refreshes_at_the_floor(two_cpus: None) -> None:
    # A run training on a GPU keeps one CPU busy and leaves one idle: half of it (0.5 CPU) is the budget, so the
    # local tab above refreshes every 0.39 / 0.5 = 0.78 s: the 2 s floor instead of 3.9 s.
    assert live.refresh_interval(0.03, active=True, spare_cpus=1.0) == 2.0
    # Two local tabs at 0.1 CPU-s each: 2 × 1.3 / 0.5 = 5.2 s (and 26 s on a machine with no idle CPU).
    assert live.refresh_interval(0.1, active=True, watchers=2, spare_cpus=1.0) == pytest.approx(5.2)
    assert live.refresh_interval(0.1, active=True, watchers=2) == pytest.approx(26.0)
    # A CPU-bound run leaves next to nothing idle: half of 0.1 CPU is less than the share, which stands.
    assert live.refresh_interval(0.03, active=True, spare_cpus=0.1) == pytest.approx(3.9)


def test_idle_cpus_are_read_at_most_every_few_seconds_and_smoothed() -> None:
    meter = live.IdleMeter()
    assert meter.read(100.0, 50.0) == 0.0  # one reading: nothing known yet, so assume a busy machine
    assert meter.read(102.0, 52.0) == 0.0  # 2 s later: too soon (SPARE_EVERY_S = 5)
    assert meter.read(105.0, 60.0) == pytest.approx(2.0)  # 10 idle CPU-s in 5 s: two CPUs idle
    assert meter.read(110.0, 60.0) == pytest.approx(1.4)  # none idle since: 2 + 0.3 × (0 − 2)
    assert meter.read(111.0, 70.0) == pytest.approx(1.4)  # too soon again: the last answer


@pytest.mark.parametrize(
    ("peer", "forwarded", "local"),
    [
        (None, "", True),  # Streamlit's None: a loopback connection, the browser on this machine
        ("127.0.0.1", "", True),
        ("::1", "", True),
        ("192.168.1.5", "", True),  # the machine's own LAN address, opened on the machine itself
        ("::ffff:192.168.1.5", "", True),  # the same, as IPv6 spells it
        ("fe80::1%eth0", "", True),  # an own link-local address with its zone
        ("192.168.1.77", "", False),  # a participant's laptop
        (None, "192.168.1.77, 10.0.0.1", False),  # through a reverse proxy on this machine: the browser comes first
        (None, "127.0.0.1", True),
        ("192.168.1.77", "127.0.0.1", False),  # a header from a remote browser itself is not trusted
    ],
)
def test_a_browser_is_local_when_its_address_is_one_of_this_machines(
    peer: str | None, forwarded: str, local: bool
) -> None:
    assert live.is_local_browser(peer, forwarded, {"127.0.0.1", "192.168.1.5", "fe80::1"}) == local


def test_this_machines_addresses_include_its_loopback() -> None:
    assert "127.0.0.1" in live.own_addresses()


def test_the_typical_cost_follows_the_live_parts_own_refreshes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole-page run (a new tab's first: every point read from the start, the first figures drawn) costs several
    times what a refresh does and is not what repeats every interval: only the live part's own reruns count."""
    assert not live.in_fragment_rerun()  # no script runs here at all
    state: dict[str, float] = {}
    monkeypatch.setattr(live.st, "session_state", state)
    monkeypatch.setattr(live, "in_fragment_rerun", lambda: False)
    assert live.typical_cost("cost", 0.7) == 0.0 and "cost" not in state  # a whole page: the floor until measured
    monkeypatch.setattr(live, "in_fragment_rerun", lambda: True)
    assert live.typical_cost("cost", 0.1) == 0.1  # the first refresh of its own
    assert live.typical_cost("cost", 0.2) == pytest.approx(0.12)  # smoothed: 0.8 × 0.1 + 0.2 × 0.2
    monkeypatch.setattr(live, "in_fragment_rerun", lambda: False)
    assert live.typical_cost("cost", 0.7) == pytest.approx(0.12)
    monkeypatch.setattr(live, "in_fragment_rerun", lambda: True)
    assert live.typical_cost("dear first", 0.7) == live.FIRST_COST_CAP_S == 0.15  # one dear first refresh: capped
    for _ in range(20):
        typical = live.typical_cost("dear first", 0.7)
    assert typical == pytest.approx(0.7, abs=0.01)  # refreshes that are all dear settle it there all the same
