"""Time the authorization step of one request, as the pipeline runs it.

After authentication, `Gateway._decide` in gateway/pipeline.py matches the
route and looks up the role's grant with `Policy.authorize`.  It rejects the
request when there is none, else formats the grant's row for the decision
line.  For an "own" grant, `apply_scope` then compares the object's owners
with the subject.  This script times those steps with the principal's role,
the route and the object's owners already known, at two sizes:

- small: config.yaml and policies/roles.csv as shipped, 10 users;
- large: a generated roles.csv of 10,000 `p` rows with the routes it needs
  (bench/synthetic.py), 100,000 users in the SQLite store.

The large size is timed on the same request shapes as the small one, which
use the shipped routes, and again on requests to its generated routes.

Every call is timed on its own with `time.perf_counter_ns`.  The row "timer
floor" is the cost of that timing around a call that does nothing.  Plain
`casbin.Enforcer.enforce` is timed on a sample of the same requests and must
agree with the index on every one of them.

Run from the repository: ``.venv/bin/python bench/decision.py``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import casbin
from servers import machine_busy_seconds
from synthetic import (
    ROLE_WEIGHTS,
    GENERATED_PREFIX,
    SOURCE_CONFIG,
    fill_store,
    user_roles,
    write_synthetic_config,
)
from timing import Summary, describe_machine, format_table, noop, summarize, time_each

from gateway.authz.ownership import is_own
from gateway.authz.policy import Policy
from gateway.config.derive import derive_config
from gateway.config.model import RouteConfig
from gateway.snapshot import Snapshot, load_snapshot
from gateway.store import SQLiteUserStore

# Targets for the large case: the median and p99 of one decision, in
# microseconds, and the largest ratio of the large case to the small one.
TARGET_MEDIAN_US = 20.0
TARGET_P99_US = 50.0
TARGET_RATIO = 1.5
# Share of requests whose object belongs to the subject.
OWN_SHARE = 0.5
DECISION = "decision (authorize + row + own/other)"
DECISION_ALLOWED = "decision, allowed requests only"
# Untimed calls before each timed series, so caches and branch predictors are
# in their steady state.
WARMUP_CALLS = 10_000
# CPUs that other processes may keep busy before the figures are flagged.
OTHER_CPUS_WARNING = 0.1


@dataclass(frozen=True, slots=True)
class RequestShape:
    """A request without its users: role, route, and whether the object is own."""

    role: str
    method: str
    segments: tuple[str, ...]
    resource: str
    action: str
    own: bool


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One authenticated, routed request: who, which route, whose object."""

    user_id: str
    role: str
    method: str
    segments: tuple[str, ...]
    resource: str
    action: str
    owners: frozenset[str]

    @property
    def relation(self) -> str:
        """The Casbin request's `rel`: "own" when the subject owns the object."""
        return "own" if self.user_id in self.owners else "other"


@dataclass
class Case:
    """One policy size: its snapshot, store, reference enforcer and users."""

    name: str
    snapshot: Snapshot
    store: SQLiteUserStore
    reference: casbin.Enforcer
    users: list[tuple[str, str]]


@dataclass(frozen=True)
class Series:
    """Requests timed on one case; `label` names them in the table."""

    label: str
    case: Case
    requests: list[DecisionRequest]
    enforce_count: int


@dataclass(frozen=True)
class Row:
    label: str
    operation: str
    summary: Summary


def decide(policy: Policy, request: DecisionRequest) -> bool:
    """Decide as `Gateway._decide` and `apply_scope` do once the owners are known."""
    grant = policy.authorize(request.role, request.resource, request.action)
    if grant is None:
        return False

    # `_decide` writes the grant's row to the decision line on every request.
    grant.rule.location()
    if grant.scope == "own":
        # False: with operators.see_unassigned_chats off, as shipped, an
        # unassigned object is nobody's own.
        return is_own(request.owners, request.user_id, False)

    return True


def concrete_segments(route: RouteConfig, chooser: random.Random) -> tuple[str, ...]:
    """Return the path segments of a request to `route`, parameters filled in."""
    return tuple(
        str(chooser.randrange(1, 10_000)) if segment.is_parameter else segment.text
        for segment in route.path.segments
    )


def generate_shapes(
    routes: list[RouteConfig], count: int, seed: int
) -> list[RequestShape]:
    """Draw `count` shapes: roles by ROLE_WEIGHTS, any route, own objects or not."""
    chooser = random.Random(seed)
    roles = list(ROLE_WEIGHTS)
    weights = list(ROLE_WEIGHTS.values())
    shapes = []
    for _ in range(count):
        route = chooser.choice(routes)
        shapes.append(
            RequestShape(
                role=chooser.choices(roles, weights)[0],
                method=chooser.choice(route.methods),
                segments=concrete_segments(route, chooser),
                resource=route.resource,
                action=route.action,
                own=chooser.random() < OWN_SHARE,
            )
        )

    return shapes


def bind_users(
    shapes: list[RequestShape], users: list[tuple[str, str]], seed: int
) -> list[DecisionRequest]:
    """Give each shape a subject of its role and an object owner.

    The shapes are drawn apart from the users, so two cases with different
    users get the same shapes in the same order.  Raises ValueError with
    fewer than two users, as an object of another user needs one.
    """
    if len(users) < 2:
        raise ValueError(f"bind_users needs at least two users, got {len(users)}")

    chooser = random.Random(seed)
    by_role: dict[str, list[str]] = {}
    for user_id, role in users:
        by_role.setdefault(role, []).append(user_id)

    requests = []
    for shape in shapes:
        subject = chooser.choice(by_role[shape.role])
        owner = subject
        while not shape.own and owner == subject:
            owner = chooser.choice(users)[0]

        requests.append(
            DecisionRequest(
                user_id=subject,
                role=shape.role,
                method=shape.method,
                segments=shape.segments,
                resource=shape.resource,
                action=shape.action,
                owners=frozenset((owner,)),
            )
        )

    return requests


def outcome_counts(policy: Policy, requests: list[DecisionRequest]) -> Counter:
    counts: Counter = Counter()
    for request in requests:
        grant = policy.authorize(request.role, request.resource, request.action)
        if grant is None:
            counts["denied, no grant"] += 1
        elif grant.scope == "all":
            counts["allowed, scope all"] += 1
        elif request.relation == "own":
            counts["allowed, own object"] += 1
        else:
            counts["denied, other's object"] += 1

    return counts


def time_decisions(series: Series) -> list[Row]:
    """Time the floor, the lookup, the decision and the route match of each request."""
    policy = series.case.snapshot.policy
    routes = series.case.snapshot.routes
    requests = series.requests
    timed = {
        "timer floor (empty call)": (noop, [(policy, r) for r in requests]),
        "Policy.authorize": (
            policy.authorize,
            [(r.role, r.resource, r.action) for r in requests],
        ),
        DECISION: (decide, [(policy, r) for r in requests]),
        DECISION_ALLOWED: (
            decide,
            [(policy, r) for r in requests if decide(policy, r)],
        ),
        "routes.match(method, segments)": (
            routes.match,
            [(r.method, r.segments) for r in requests],
        ),
    }
    rows = []
    for operation, (call, arguments) in timed.items():
        time_each(call, arguments[:WARMUP_CALLS])
        rows.append(Row(series.label, operation, summarize(time_each(call, arguments))))

    return rows


async def time_user_reads(store: SQLiteUserStore, user_ids: list[str]) -> list[int]:
    """Time `await store.get_user(id)` for each id, one call at a time."""
    clock = time.perf_counter_ns
    samples = []
    for user_id in user_ids:
        started = clock()
        user = await store.get_user(user_id)
        samples.append(clock() - started)
        if user is None:
            raise RuntimeError(f"user {user_id!r} is missing from the store")

    return samples


def time_store(series: Series) -> Row:
    """Time a store read of each request's subject, ids spread over every user."""
    store = series.case.store
    user_ids = [request.user_id for request in series.requests]
    asyncio.run(time_user_reads(store, user_ids[:WARMUP_CALLS]))
    samples = asyncio.run(time_user_reads(store, user_ids))
    return Row(series.label, "store.get_user(subject id)", summarize(samples))


def enforce_reference(series: Series) -> tuple[Row, int]:
    """Time plain `Enforcer.enforce` and count disagreements with `decide`."""
    reference = series.case.reference
    policy = series.case.snapshot.policy
    clock = time.perf_counter_ns
    samples = []
    disagreements = 0
    for request in series.requests[: series.enforce_count]:
        started = clock()
        expected = reference.enforce(
            request.role, request.resource, request.action, request.relation
        )
        samples.append(clock() - started)
        if expected != decide(policy, request):
            disagreements += 1
            print(
                f"  disagreement: {request.role} {request.action} "
                f"{request.resource} ({request.relation}): Casbin {expected}",
                file=sys.stderr,
            )

    row = Row(series.label, "casbin Enforcer.enforce", summarize(samples))
    return row, disagreements


def prepare_case(name: str, config_file: Path, roles: list[str]) -> Case:
    snapshot = load_snapshot(config_file)
    config = snapshot.config
    store = SQLiteUserStore(config.store_path, owner_role=config.roles[0])
    started = time.perf_counter()
    users, added = asyncio.run(
        fill_store(store, roles, config_file.with_name("users.json"))
    )
    if added:
        print(
            f"  {name}: added {len(users):,} users to {config.store_path} in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )

    # A reference independent of the enforcer that Policy keeps.
    reference = casbin.Enforcer(str(config.model_path), str(config.roles_path))
    return Case(name, snapshot, store, reference, users)


def small_case(folder: Path) -> Case:
    config_file = derive_config(
        SOURCE_CONFIG,
        folder / "config.yaml",
        {
            ("store", "sqlite"): folder / "gateway.db",
            ("authentication", "jwt", "secret_file"): folder / "jwt-secret",
        },
    )
    return prepare_case("small", config_file, user_roles(10))


def large_case(folder: Path, policy_rows: int, user_count: int) -> Case:
    synthetic = write_synthetic_config(folder, policy_rows)
    return prepare_case("large", synthetic.config_file, user_roles(user_count))


def describe_series(series: Series) -> str:
    policy = series.case.snapshot.policy
    counts = outcome_counts(policy, series.requests)
    shares = ", ".join(
        f"{label} {count / len(series.requests):.0%}"
        for label, count in sorted(counts.items())
    )
    return (
        f"{series.label}: {len(policy.rules):,} p rows, "
        f"{len(series.case.snapshot.config.routes):,} routes, "
        f"{len(series.case.users):,} users; requests: {shares}"
    )


def build_series(small: Case, large: Case, options: argparse.Namespace) -> list[Series]:
    """Build three series: the shipped routes on both cases, then the generated ones.

    The first two series have the same request shapes, so their ratio shows
    what the size alone costs.
    """
    shipped = list(small.snapshot.config.routes)
    generated = [
        route
        for route in large.snapshot.config.routes
        if route.resource.startswith(GENERATED_PREFIX)
    ]
    shipped_shapes = generate_shapes(shipped, options.decisions, options.seed)
    generated_shapes = generate_shapes(generated, options.decisions, options.seed)
    return [
        Series("small", small, bind_users(shipped_shapes, small.users, options.seed),
               options.enforce_small),
        Series("large", large, bind_users(shipped_shapes, large.users, options.seed),
               options.enforce_large),
        Series(
            "large, generated routes",
            large,
            bind_users(generated_shapes, large.users, options.seed),
            options.enforce_large,
        ),
    ]


def run_series(series: Series) -> tuple[list[Row], int, float]:
    """Time one series and return its rows, disagreements and others' CPU load."""
    print(describe_series(series), flush=True)
    wall, machine, own = time.monotonic(), machine_busy_seconds(), time.process_time()
    rows = time_decisions(series)
    rows.append(time_store(series))
    enforce_row, disagreements = enforce_reference(series)
    rows.append(enforce_row)

    others = machine_busy_seconds() - machine - (time.process_time() - own)
    other_cpus = max(0.0, others) / (time.monotonic() - wall)
    print(f"  other processes kept {other_cpus:.2f} CPUs busy meanwhile", flush=True)
    return rows, disagreements, other_cpus


def row_of(rows: list[Row], label: str, operation: str) -> Summary:
    return next(
        row.summary for row in rows if row.label == label and row.operation == operation
    )


def print_results(rows: list[Row], disagreements: dict[str, tuple[int, int]]) -> None:
    """Print the table, the ratios, the disagreements and the targets."""
    print()
    print(
        format_table(
            ("requests", "operation", "samples", "median us", "p99 us", "max us"),
            (
                (
                    row.label,
                    row.operation,
                    f"{row.summary.count:,}",
                    f"{row.summary.median_us:.2f}",
                    f"{row.summary.p99_us:.2f}",
                    f"{row.summary.max_us:.1f}",
                )
                for row in rows
            ),
        )
    )

    small = row_of(rows, "small", DECISION)
    large = row_of(rows, "large", DECISION)
    generated = row_of(rows, "large, generated routes", DECISION)
    median_ratio = large.median_us / small.median_us
    p99_ratio = large.p99_us / small.p99_us
    checks = []
    for label, summary in (("large", large), ("large, generated routes", generated)):
        median_met = summary.median_us < TARGET_MEDIAN_US
        checks.append((f"{label}: median {summary.median_us:.2f} us < "
                       f"{TARGET_MEDIAN_US:g} us", median_met))
        checks.append((f"{label}: p99 {summary.p99_us:.2f} us < {TARGET_P99_US:g} us",
                       summary.p99_us < TARGET_P99_US))
    checks.append((f"large/small median {median_ratio:.2f} <= {TARGET_RATIO:g}",
                   median_ratio <= TARGET_RATIO))
    checks.append((f"large/small p99 {p99_ratio:.2f} <= {TARGET_RATIO:g}",
                   p99_ratio <= TARGET_RATIO))
    for label, (count, compared) in disagreements.items():
        checks.append((f"{label}: index and enforce disagree on {count} of "
                       f"{compared:,} requests", count == 0))

    print()
    print(f"decision, large/small on the same requests: median {median_ratio:.2f}x, "
          f"p99 {p99_ratio:.2f}x")
    for label in ("small", "large", "large, generated routes"):
        enforce = row_of(rows, label, "casbin Enforcer.enforce")
        decision = row_of(rows, label, DECISION)
        print(f"enforce/decision median, {label}: "
              f"{enforce.median_us / decision.median_us:,.0f}x")
    for text, met in checks:
        print(f"{'met' if met else 'MISSED'}: {text}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000,
                        help="timed requests per case and operation")
    parser.add_argument("--policy-rows", type=int, default=10_000,
                        help="p rows of the large case's roles.csv")
    parser.add_argument("--users", type=int, default=100_000,
                        help="users in the large case's store")
    parser.add_argument("--enforce-small", type=int, default=5_000,
                        help="requests timed with Enforcer.enforce, small case")
    parser.add_argument("--enforce-large", type=int, default=1_000,
                        help="requests timed with Enforcer.enforce, large case "
                        "(tens of milliseconds each)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the requests")
    parser.add_argument("--work-dir", type=Path,
                        help="keep the generated files here and reuse its user "
                        "store on the next run (default: a temporary folder)")
    options = parser.parse_args(argv)

    for name in ("decisions", "policy_rows", "users", "enforce_small", "enforce_large"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    return options


def run(options: argparse.Namespace, folder: Path) -> int:
    print(describe_machine())
    print("each call timed on its own with time.perf_counter_ns, garbage "
          "collector on", flush=True)
    small = small_case(folder / "small")
    large = large_case(folder / "large", options.policy_rows, options.users)
    rows: list[Row] = []
    disagreements = {}
    busiest = 0.0
    for series in build_series(small, large, options):
        series_rows, count, other_cpus = run_series(series)
        rows.extend(series_rows)
        compared = min(series.enforce_count, len(series.requests))
        disagreements[series.label] = (count, compared)
        busiest = max(busiest, other_cpus)

    for case in (small, large):
        asyncio.run(case.store.close())

    print_results(rows, disagreements)
    if busiest > OTHER_CPUS_WARNING:
        print(f"warning: other processes kept up to {busiest:.2f} CPUs busy, "
              "so the figures are too high; run again on a quiet machine")
    # Missed speed targets are printed; a wrong decision fails the run.
    return 1 if any(count for count, _ in disagreements.values()) else 0


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    if options.work_dir is not None:
        return run(options, options.work_dir.resolve())

    with tempfile.TemporaryDirectory(prefix="gateway-decision-") as folder:
        return run(options, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
