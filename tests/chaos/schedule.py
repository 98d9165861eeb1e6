"""A chaos schedule: everything one chaos run does, derived from one integer seed and nothing else.

The schedule is data (frozen dataclasses), built without I/O, printed when a run fails and rebuilt from the seed
to replay it. It holds

* the fleet: 3 to 6 devices picked from one generated lab fleet (hybrid and Entra joined, key and certificate
  trust, sometimes a shared device with several users, sometimes one that cannot migrate), in one or two waves;
* people: per user a behaviour of the lab (``prompt``; ``slow``, i.e. late; ``never``; ``away``: back after a
  while if signed out, else very late), RDP-only (no Hello there), privileged (never a cloud ticket);
* faults: per fault a device (and optionally a user) state that arms it, the lab fault kind and its counts. Over
  consecutive seeds the (kind, device state) pairs go round-robin, three per seed, so any 27 consecutive seeds
  plan every fault kind at every targeted state (``tests/chaos/test_chaos.py`` checks seeds 0-29);
* DC/VPN flaps (a device loses line of sight to its domain controllers for a while), operator pauses, and
  SIGKILLs of the orchestrator: at its n-th journal commit (``MIGRATOR_CRASH_AT``) or at its n-th question to the
  clock (a moment in the middle of a visit or a wait), each followed by a restart (``resume``).

Times are offsets from the fleet's start, in virtual seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Literal

from migrator.lab.fleet import generate_fleet, looks_eligible, parse_mix
from migrator.lab.model import Device, Fleet
from migrator.lab.server.faults import STAGES, FaultKind
from tests.chaos.states import TARGET_DEVICE_STATES, TARGET_USER_STATES

HOUR = 3600.0
DAY = 24 * HOUR
POOL_SEED = 7  # the generated fleet devices are picked from (60 devices; see _pool)
POOL_SIZE = 60
# The kinds that act on a device's WinRM listener over NTLM, the chaos fleet's transport: a Kerberos clock skew
# (stage "kerberos") needs Kerberos sign-in and Graph throttling (stage "graph") the lab tenant, neither of which a
# chaos wave uses, so arming them would plan faults that never fire.
DEVICE_STAGES = ("http", "auth", "action", "exec")
FAULT_KINDS: tuple[str, ...] = tuple(kind.value for kind in FaultKind if any(kind in STAGES[s] for s in DEVICE_STAGES))
# Every (fault kind, device state) pair, in a fixed shuffled order so that one schedule's round-robin share mixes
# kinds and states.
_PAIRS = [(kind, state) for state in TARGET_DEVICE_STATES for kind in FAULT_KINDS]
COMBOS: tuple[tuple[str, str], ...] = tuple(random.Random(0).sample(_PAIRS, k=len(_PAIRS)))
TRIGGERS_PER_SCHEDULE = 3  # round-robin triggers per seed: 30 consecutive seeds x 3 >= len(COMBOS)
CHAOS_SECONDS = 1.5 * DAY  # faults, flaps, pauses and kills happen in this window; then everything is cleared

Compliance = Literal["prompt", "slow", "never", "away"]
KillKind = Literal["journal", "moment"]


@dataclass(frozen=True)
class Person:
    device: str
    sid: str
    name: str
    compliance: Compliance
    delay_seconds: float
    away_for: float  # "away" users come back (and sign in) this long after the start
    rdp_only: bool
    privileged: bool

    def describe(self) -> str:
        extra = [f"back after {self.away_for / HOUR:.0f}h" if self.compliance == "away" else ""]
        extra += ["RDP only" if self.rdp_only else "", "privileged" if self.privileged else ""]
        notes = ", ".join(e for e in extra if e)
        return (
            f"{self.device}/{self.name}: {self.compliance} ({self.delay_seconds:.0f}s){', ' + notes if notes else ''}"
        )


@dataclass(frozen=True)
class FaultTrigger:
    """Arm a lab fault for ``device`` once the store shows it in ``state`` (and one of its users in
    ``user_state``, when given)."""

    device: str
    state: str
    kind: str
    count: int = 1
    after: int = 0  # matching requests (Create or Command only) that pass before it fires
    actions: tuple[str, ...] = ()
    duration: float = 0.0  # offline / reboot: how long the device stays down
    delay: float = 0.0  # latency / slow: virtual seconds added
    user_state: str | None = None

    def describe(self) -> str:
        where = f"{self.device} in {self.state}" + (f" with a user in {self.user_state}" if self.user_state else "")
        details = [f"x{self.count}"]
        if self.after:
            details.append(f"after {self.after}")
        if self.actions:
            details.append("on " + "/".join(self.actions))
        if self.duration:
            details.append(f"down {self.duration / HOUR:.1f}h")
        if self.delay:
            details.append(f"+{self.delay:.0f}s")
        return f"{self.kind} at {where} ({', '.join(details)})"


@dataclass(frozen=True)
class Flap:
    """A device loses line of sight to its domain controllers at ``at`` for ``lasting`` seconds."""

    device: str
    at: float
    lasting: float

    def describe(self) -> str:
        return f"{self.device}: no DC from +{self.at / HOUR:.1f}h for {self.lasting / HOUR:.1f}h"


@dataclass(frozen=True)
class Pause:
    """An operator pauses ``wave`` at ``at`` and resumes it ``hold`` seconds later."""

    wave: str
    at: float
    hold: float

    def describe(self) -> str:
        return f"pause {self.wave} at +{self.at / HOUR:.1f}h for {self.hold / HOUR:.1f}h"


@dataclass(frozen=True)
class Kill:
    """SIGKILL of the orchestrator at its ``number``-th journal commit or clock question; restarted (``resume``)
    ``restart_after`` virtual seconds later."""

    kind: KillKind
    number: int
    restart_after: float

    def describe(self) -> str:
        at = "journal commit" if self.kind == "journal" else "clock question"
        return f"SIGKILL at {at} #{self.number}, restart {self.restart_after / 60:.0f} min later"


@dataclass(frozen=True)
class Waits:
    recheck_every: float
    user_deadline: float
    dc_deadline: float
    reprovision_deadline: float
    remind_after: float
    unreachable_deadline: float


@dataclass(frozen=True)
class Schedule:
    seed: int
    devices: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    batch_size: int
    concurrency: int
    run_waits: bool  # `migrator run` keeps going while devices wait (else the next wave starts at once)
    waits: Waits
    people: tuple[Person, ...]
    triggers: tuple[FaultTrigger, ...]
    flaps: tuple[Flap, ...]
    pauses: tuple[Pause, ...]
    kills: tuple[Kill, ...]
    chaos_seconds: float = CHAOS_SECONDS
    notes: tuple[str, ...] = field(default=())

    def wave_names(self) -> list[str]:
        return [f"wave-{index}" for index in range(1, len(self.waves) + 1)]

    def describe(self) -> str:
        pool = {d.name: d for d in _pool().devices}
        lines = [f"chaos schedule, seed {self.seed}"]
        for name, members in zip(self.wave_names(), self.waves, strict=True):
            lines.append(f"  {name}: {', '.join(members)}")
        lines.append(
            f"  batch size {self.batch_size}, concurrency {self.concurrency}, run "
            f"{'waits' if self.run_waits else 'returns'}; waits: recheck "
            f"{self.waits.recheck_every / HOUR:g}h, deadlines {self.waits.user_deadline / HOUR:g}h, unreachable "
            f"{self.waits.unreachable_deadline / HOUR:g}h"
        )
        lines.append("  devices:")
        for name in self.devices:
            device = pool[name]
            trusts = ",".join(u.container.trust if u.container else "-" for u in device.users)
            lines.append(
                f"    {name}: {device.join_type} {device.domain or ''} build {device.os.full_build}, "
                f"{len(device.users)} user(s) [{trusts}]"
            )
        sections: list[tuple[str, list[str]]] = [
            ("people", [p.describe() for p in self.people]),
            ("faults", [t.describe() for t in self.triggers]),
            ("DC/VPN flaps", [f.describe() for f in self.flaps]),
            ("pauses", [p.describe() for p in self.pauses]),
            ("kills", [k.describe() for k in self.kills]),
        ]
        for title, items in sections:
            lines.append(f"  {title}:" + ("" if items else " none"))
            lines.extend(f"    {item}" for item in items)
        return "\n".join(lines)


# ---- the fleet ---------------------------------------------------------------------------------------------


@cache
def _pool() -> Fleet:
    """The generated fleet every schedule picks from (never mutated: :func:`build_fleet` copies)."""
    return generate_fleet(POOL_SIZE, POOL_SEED, parse_mix("key=50,cert=50,cloud=0,none=0"))


def _trust(device: Device) -> str | None:
    return next((u.container.trust for u in device.users if u.container is not None), None)


@cache
def _categories() -> dict[str, tuple[str, ...]]:
    """Pool devices by kind: on the migration path (hybrid/Entra x key/cert), shared, and off it (``odd``)."""
    pool = _pool()
    out: dict[str, list[str]] = {"hybrid-key": [], "hybrid-cert": [], "entra": [], "shared": [], "odd": []}
    for device in pool.devices:
        eligible = looks_eligible(pool, device) and not any(u.privileged for u in device.users)
        trust = _trust(device)
        if not eligible or trust is None:
            out["odd"].append(device.name)
        elif 2 <= len(device.users) <= 3:
            out["shared"].append(device.name)
        elif len(device.users) == 1 and device.join_type == "hybrid":
            out[f"hybrid-{trust}"].append(device.name)
        elif len(device.users) == 1:
            out["entra"].append(device.name)
    return {kind: tuple(names) for kind, names in out.items()}


def build_fleet(schedule: Schedule) -> Fleet:
    """A fresh copy of the schedule's fleet with its people's behaviours (addresses are set by the harness)."""
    source = _pool()
    pool = source.model_copy(update={"devices": []}, deep=True)
    pool.devices = [d.model_copy(deep=True) for d in source.devices if d.name in schedule.devices]
    people = {(p.device, p.sid): p for p in schedule.people}
    for device in pool.devices:
        device.vpn_only = False  # line of sight changes only as the schedule says (flaps)
        device.dc_reachable = True
        for user in device.users:
            person = people[(device.name, user.sid)]
            user.behaviour.compliance = person.compliance
            user.behaviour.delay_seconds = person.delay_seconds
            user.behaviour.prefers_rdp = person.rdp_only
            user.behaviour.away_until = (
                pool.clock + timedelta(seconds=person.away_for) if person.compliance == "away" else None
            )
            user.privileged = person.privileged
    return pool


# ---- the schedule ------------------------------------------------------------------------------------------


def _pick_devices(rng: random.Random, size: int) -> list[str]:
    kinds = _categories()
    wanted = ["hybrid-cert", "hybrid-key"]
    extra = ["hybrid-cert", "hybrid-key", "entra", "entra", "shared", "shared", "hybrid-cert", "odd"]
    while len(wanted) < size:
        wanted.append(rng.choice(extra))
    picked: list[str] = []
    for kind in wanted:
        choices = [n for n in kinds[kind] if n not in picked] or [
            n for n in kinds["hybrid-cert"] + kinds["hybrid-key"] if n not in picked
        ]
        picked.append(rng.choice(choices))
    rng.shuffle(picked)
    return picked


def _person(rng: random.Random, device: Device, index: int) -> Person:
    user = device.users[index]
    compliance: Compliance = rng.choices(["prompt", "slow", "never", "away"], weights=[5, 2, 1, 1.5])[0]
    return Person(
        device=device.name,
        sid=user.sid,
        name=user.qualified_name,
        compliance=compliance,
        delay_seconds=round(rng.uniform(120, 1800)),
        away_for=round(rng.uniform(4 * HOUR, 2 * DAY)),
        rdp_only=rng.random() < 0.1,
        privileged=rng.random() < 0.04,
    )


def _trigger(rng: random.Random, kind: str, state: str, device: str, user_state: str | None = None) -> FaultTrigger:
    """A fault of ``kind``; it fires on the device's next request once armed, or (``after``) on a later Create or
    Command. Never ``after`` other requests: how many Receives poll one pipeline depends on thread timing, so
    counting them would make a replay differ."""
    count = rng.randint(1, 3)
    after = 0
    actions: tuple[str, ...] = ()
    duration = delay = 0.0
    if kind in ("busy", "http_500", "timeout"):
        actions = rng.choice([(), (), ("Command",), ("Receive",), ("Create",)])
        count = rng.randint(1, 6)
        if actions in (("Command",), ("Create",)):
            after = rng.choice([0, 0, 1, 2, 4])
    elif kind == "offline":
        count, duration = 1, rng.choice([600.0, 2 * HOUR, 10 * HOUR, 30 * HOUR, 2 * DAY])
    elif kind == "reboot":
        count, duration = rng.randint(1, 2), rng.choice([0.0, 120.0, 900.0, 3 * HOUR])
    elif kind == "latency":
        count, delay = 1, rng.choice([5.0, 60.0, 900.0])
    elif kind == "slow":
        count, delay = rng.randint(1, 8), rng.choice([5.0, 60.0, 900.0])
    elif kind == "unauthorized":
        count = rng.randint(1, 2)
    return FaultTrigger(device, state, kind, count, after, actions, duration, delay, user_state)


def make_schedule(seed: int, *, max_devices: int = 6) -> Schedule:
    """The schedule of ``seed`` (same seed, same schedule, in any process)."""
    rng = random.Random(f"migrator-chaos:{seed}")
    pool = {d.name: d for d in _pool().devices}
    devices = _pick_devices(rng, rng.randint(3, max_devices))
    split = rng.randint(1, len(devices) - 1) if rng.random() < 0.35 else len(devices)
    waves = (tuple(devices[:split]), tuple(devices[split:])) if split < len(devices) else (tuple(devices),)
    people = tuple(_person(rng, pool[name], i) for name in devices for i in range(len(pool[name].users)))
    hybrid = [n for n in devices if pool[n].join_type == "hybrid"]

    triggers: list[FaultTrigger] = []
    flaps: list[Flap] = []
    for index in range(TRIGGERS_PER_SCHEDULE):
        kind, state = COMBOS[(seed * TRIGGERS_PER_SCHEDULE + index) % len(COMBOS)]
        device = rng.choice(hybrid if state == "waiting_for_dc" and hybrid else devices)
        triggers.append(_trigger(rng, kind, state, device))
        if state == "waiting_for_dc" and device in hybrid:  # make the state happen
            flaps.append(Flap(device, 0.0, rng.uniform(6, 30) * HOUR))
    for _ in range(rng.randint(0, 2)):  # random extras, some aimed at one user's step
        device = rng.choice(devices)
        kind = rng.choice(FAULT_KINDS)
        if rng.random() < 0.5:
            triggers.append(_trigger(rng, kind, "users", device, rng.choice(TARGET_USER_STATES)))
        else:
            triggers.append(_trigger(rng, kind, rng.choice(TARGET_DEVICE_STATES), device))
    for device in hybrid:
        if rng.random() < 0.3:
            flaps.append(Flap(device, rng.uniform(0, CHAOS_SECONDS), rng.uniform(1, 20) * HOUR))

    pauses = tuple(
        Pause(rng.choice([f"wave-{i}" for i in range(1, len(waves) + 1)]), rng.uniform(0, CHAOS_SECONDS), hold)
        for hold in [rng.uniform(0.5, 12) * HOUR for _ in range(rng.choices([0, 1, 2], weights=[5, 4, 1])[0])]
    )
    kills = tuple(
        Kill(kind, rng.randint(1, 60) if kind == "journal" else rng.randint(1, 600), rng.choice([0.0, 60, 600, 3600]))
        for kind in rng.choices(["journal", "moment"], k=rng.choices([0, 1, 2, 3], weights=[2, 4, 3, 1])[0])
    )
    recheck = rng.choice([8, 12]) * HOUR
    deadline = rng.choice([1, 1.5, 2]) * DAY
    waits = Waits(
        recheck_every=recheck,
        user_deadline=deadline,
        dc_deadline=deadline,
        reprovision_deadline=deadline,
        remind_after=rng.choice([6, 12]) * HOUR,
        unreachable_deadline=rng.choice([1, 2]) * DAY,
    )
    return Schedule(
        seed=seed,
        devices=tuple(devices),
        waves=waves,
        batch_size=rng.randint(1, len(devices)),
        run_waits=rng.random() < 0.3,
        concurrency=rng.choices([1, 2], weights=[3, 1])[0],
        waits=waits,
        people=people,
        triggers=tuple(triggers),
        flaps=tuple(flaps),
        pauses=pauses,
        kills=kills,
    )
