"""The `gateway` command: serve, check, mint tokens, manage users, run the demo,
and the policy tools (explain, test, diff).

Expected failures (a bad config file, an unknown user) print `Error: ...` and
exit with 1; usage mistakes exit with 2, as click does.  `gateway serve` exits
with 3 (gateway.workers.EXIT_CANNOT_LISTEN) when it cannot bind its ports.
"""

from __future__ import annotations

import asyncio
import functools
from gettext import ngettext
from pathlib import Path

import click

from gateway.errors import ConfigError
from gateway.store import SQLiteUserStore, UserStoreError
from gateway.workers import EXIT_CANNOT_LISTEN

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_file",
    default="config.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Path of the gateway's config file.",
)


def expected_errors(command):
    """Turn ConfigError and UserStoreError into click's `Error:` and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ConfigError, UserStoreError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


@click.group()
def main() -> None:
    """Config-driven access gateway for a customer-chat API."""


@main.command()
@CONFIG_OPTION
@click.option("--host", help="Listen address; overrides listen.host.")
@click.option("--port", type=int, help="Listen port; overrides listen.port.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes serving the one port (SO_REUSEPORT).")
@click.option("--reuse-port", is_flag=True, hidden=True)
@click.option("--no-admin", is_flag=True, hidden=True)
@expected_errors
def serve(config_file: Path, host: str | None, port: int | None, workers: int,
          reuse_port: bool, no_admin: bool) -> None:
    """Run the gateway in front of the upstream named in the config."""
    from gateway.observe.logs import configure_logging
    from gateway.server import serve_forever
    from gateway.snapshot import load_snapshot

    snapshot = load_snapshot(config_file)
    configure_logging(snapshot.config.log_level)
    if workers > 1:
        from gateway.workers import Supervisor, check_port_free

        port = port if port is not None else snapshot.config.listen_port
        if port == 0:
            raise click.UsageError("--workers needs a fixed port, not 0")
        listen_host = host if host is not None else snapshot.config.listen_host
        del snapshot  # checked; each worker loads its own
        try:
            check_port_free(listen_host, port)
        except OSError as error:
            raise click.ClickException(
                f"cannot listen on {listen_host}:{port}: {error.strerror}; another "
                f"gateway's workers would share the port with this one's"
            ) from None
        raise SystemExit(Supervisor(config_file, host=host, port=port,
                                    workers=workers).run())

    _use_uvloop_when_installed()
    serving = serve_forever(snapshot, host=host, port=port, reuse_port=reuse_port,
                            admin=not no_admin)
    del snapshot  # reloads replace the gateway's snapshot; see serve_forever
    try:
        asyncio.run(serving)
    except OSError as error:
        failure = click.ClickException(f"cannot listen: {error.strerror}")
        failure.exit_code = EXIT_CANNOT_LISTEN
        raise failure from None


def _use_uvloop_when_installed() -> None:
    """Run the event loop on uvloop (`pip install '.[speed]'`) when it is there."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@main.command()
@CONFIG_OPTION
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings too.")
@expected_errors
def check(config_file: Path, strict: bool) -> None:
    """Validate the config and policy files; exit 1 naming file, line and reason."""
    from gateway.authz.reference import compare_with_casbin
    from gateway.policytools.findings import find_problems
    from gateway.snapshot import load_snapshot

    snapshot = load_snapshot(config_file, create_secret=False)
    mismatches = compare_with_casbin(snapshot.policy, snapshot.config.actions)
    if mismatches:
        raise click.ClickException(
            "the compiled policy disagrees with Casbin on: " + "; ".join(mismatches[:5])
        )

    warnings = find_problems(snapshot)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if strict and warnings:
        message = ngettext(
            "{count} warning, and --strict is set",
            "{count} warnings, and --strict is set",
            len(warnings),
        )
        raise click.ClickException(message.format(count=len(warnings)))

    policy = snapshot.policy
    counts = (
        (len(snapshot.config.routes), "route", "routes"),
        (len(policy.roles), "role", "roles"),
        (len(policy.rules), "permission", "permissions"),
        (len(policy.inheritance), "inheritance row", "inheritance rows"),
    )
    summary = ", ".join(
        f"{count} {singular if count == 1 else plural}"
        for count, singular, plural in counts
    )
    click.echo(f"OK: {config_file}: {summary}, policy revision {policy.revision}")


@main.command()
@CONFIG_OPTION
@click.option("--user", "user_id", required=True, help="Id of the user in the store.")
@click.option("--lifetime", type=click.IntRange(1, 86400),
              help="Seconds until the token expires (at most 86400).")
@expected_errors
def token(config_file: Path, user_id: str, lifetime: int | None) -> None:
    """Mint a bearer token for a user with the configured local key."""
    from gateway.config import load_config
    from gateway.tokens.issuer import TokenIssuer

    config = load_config(config_file)
    user = _run_with_store(config_file, lambda store: store.get_user(user_id))
    if user is None:
        raise click.ClickException(
            f"no user with id {user_id!r}; add one with `gateway users add`"
        )
    if user.type != "standard":
        raise click.ClickException(
            f"{user_id!r} is a service user, which authenticates with an API key"
        )
    if not user.active:
        raise click.ClickException(f"{user_id!r} is deactivated")

    click.echo(TokenIssuer(config.jwt).issue(user_id, lifetime=lifetime))


@main.command("login-link")
@CONFIG_OPTION
@click.option("--user", "user_id", required=True, help="Id of a standard user.")
@expected_errors
def login_link(config_file: Path, user_id: str) -> None:
    """Print a single-use link that signs a user in to the users page."""
    from gateway.config import load_config
    from gateway.store import SQLiteSessionStore

    config = load_config(config_file)
    user = _run_with_store(config_file, lambda store: store.get_user(user_id))
    if user is None:
        raise click.ClickException(f"no user with id {user_id!r}")
    if user.type != "standard":
        raise click.ClickException(f"{user_id!r} is a service user, which "
                                   "authenticates with an API key")
    if not user.active:
        raise click.ClickException(f"{user_id!r} is deactivated")

    settings = config.gateway_api
    sessions = SQLiteSessionStore(config.store_path)
    try:
        code = sessions.create_login_code(user_id, settings.login_link_seconds)
    finally:
        sessions.close()
    click.echo(f"{settings.link_base}{settings.prefix}login?code={code}")
    click.echo(f"(signs in once, within {settings.login_link_seconds:g} s)", err=True)


@main.group()
def users() -> None:
    """Add, list and change the users in the store."""


def _role_option(function):
    return click.option(
        "--role", required=True, help="One of the roles listed in the config."
    )(function)


@users.command("add")
@CONFIG_OPTION
@click.option("--name", required=True, help="Display name.")
@click.option("--email", required=True, help="Email address, unique in the store.")
@_role_option
@click.option("--id", "user_id", help="User id; generated when omitted.")
@expected_errors
def users_add(config_file, name, email, role, user_id) -> None:
    """Add a standard user, who signs in with bearer tokens."""
    _check_role(config_file, role)
    user = _run_with_store(
        config_file,
        lambda store: store.add_user(
            name=name, email=email, role=role, type="standard", user_id=user_id
        ),
    )
    click.echo(f"added {user.id} ({user.role})")


@users.command("list")
@CONFIG_OPTION
@expected_errors
def users_list(config_file: Path) -> None:
    """List every user with id, role, type and state."""
    listed = _run_with_store(config_file, lambda store: store.list_users())
    for user in listed:
        state = "active" if user.active else "inactive"
        click.echo(f"{user.id}\t{user.role}\t{user.type}\t{state}\t"
                   f"{_printable(user.email)}\t{_printable(user.name)}")


def _printable(text: str) -> str:
    """Escape characters that would rewrite a terminal line, from older stores."""
    import unicodedata

    return "".join(
        character if unicodedata.category(character)[0] != "C"
        and character not in "\u2028\u2029"
        else f"\\u{ord(character):04x}"
        for character in text
    )


@users.command("set-role")
@CONFIG_OPTION
@click.argument("user_id")
@click.argument("role")
@expected_errors
def users_set_role(config_file: Path, user_id: str, role: str) -> None:
    """Give a user another role; it applies to their next request."""
    _check_role(config_file, role)
    user = _run_with_store(config_file, lambda store: store.set_role(user_id, role))
    click.echo(f"{user.id} is now {user.role}")


@users.command("deactivate")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def users_deactivate(config_file: Path, user_id: str) -> None:
    """Refuse every further request of a user (403), keeping the record."""
    user = _run_with_store(config_file, lambda store: store.set_active(user_id, False))
    click.echo(f"{user.id} is deactivated")


@users.command("activate")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def users_activate(config_file: Path, user_id: str) -> None:
    """Let a deactivated user in again."""
    user = _run_with_store(config_file, lambda store: store.set_active(user_id, True))
    click.echo(f"{user.id} is active")


@users.command("delete")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def users_delete(config_file: Path, user_id: str) -> None:
    """Delete a user with its API keys and sessions; its id is never given again."""
    user = _run_with_store(config_file, lambda store: store.delete_user(user_id))
    click.echo(f"deleted {user.id} ({user.role})")


@main.group("service-users")
def service_users() -> None:
    """Add service users, which authenticate with an API key."""


@service_users.command("add")
@CONFIG_OPTION
@click.option("--name", required=True, help="Display name.")
@click.option("--email", required=True, help="Contact address, unique in the store.")
@_role_option
@click.option("--id", "user_id", help="User id; generated when omitted.")
@expected_errors
def service_users_add(config_file, name, email, role, user_id) -> None:
    """Add a service user and print its API key, which is shown only once."""
    _check_role(config_file, role)

    user, key = _run_with_store(
        config_file,
        lambda store: store.add_service_user(name=name, email=email, role=role,
                                             user_id=user_id),
    )
    click.echo(f"added {user.id} ({user.role})", err=True)
    click.echo("API key (store it now, it is not shown again):", err=True)
    click.echo(key)


@service_users.command("add-key")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def service_users_add_key(config_file: Path, user_id: str) -> None:
    """Issue another API key for a service user and print it once."""
    key = _run_with_store(config_file, lambda store: store.add_api_key(user_id))
    click.echo(key)


@service_users.command("keys")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def service_users_keys(config_file: Path, user_id: str) -> None:
    """List a service user's API keys by prefix, with creation and revocation time."""
    keys = _run_with_store(config_file, lambda store: store.list_api_keys(user_id))
    for key in keys:
        click.echo(f"{key.prefix}\t{key.created_at}\t{key.revoked_at or 'active'}")


@service_users.command("revoke-key")
@CONFIG_OPTION
@click.argument("prefix")
@expected_errors
def service_users_revoke_key(config_file: Path, prefix: str) -> None:
    """Revoke an API key by its prefix (or `gwk_PREFIX`); requests with it get 401."""
    key = _run_with_store(config_file, lambda store: store.revoke_api_key(prefix))
    click.echo(f"revoked key {key.prefix} of {key.user_id}")


@service_users.command("origins")
@CONFIG_OPTION
@click.argument("user_id")
@click.argument("origins", nargs=-1)
@click.option("--clear", is_flag=True, help="Allow no origin at all.")
@expected_errors
def service_users_origins(config_file: Path, user_id: str, origins: tuple[str, ...],
                          clear: bool) -> None:
    """Show, or with ORIGINS replace, the origins allowed to embed USER_ID's sessions.

    An origin is a scheme, host and optional port: https://crm.example.com.
    """
    from gateway.api.embed import check_origin
    from gateway.errors import UnprocessableContent

    if origins and clear:
        raise click.UsageError("give ORIGINS or --clear, not both")
    _service_user(config_file, user_id)
    embeds = _embed_store(config_file)
    try:
        if origins or clear:
            try:
                checked = [check_origin(origin, "origin") for origin in origins]
            except UnprocessableContent as error:
                raise click.BadParameter(error.detail, param_hint="ORIGINS") from None
            embeds.set_origins(user_id, checked)
        allowed = embeds.allowed_origins(user_id)
    finally:
        embeds.close()

    for origin in allowed:
        click.echo(origin)
    if not allowed:
        click.echo("(none)")


@service_users.command("sessions")
@CONFIG_OPTION
@click.argument("user_id")
@expected_errors
def service_users_sessions(config_file: Path, user_id: str) -> None:
    """List a service user's embed sessions: id, origin, scope, state."""
    import time

    _service_user(config_file, user_id)
    embeds = _embed_store(config_file)
    try:
        sessions = embeds.list(user_id)
    finally:
        embeds.close()
    now = time.time()
    for session in sessions:
        if session.revoked_at is not None:
            state = "revoked"
        elif session.started_at is None:
            state = "code expired" if session.code_expires_at <= now else "not started"
        else:
            state = "open" if session.expires_at > now else "expired"
        scope = f"{session.scope_kind} {session.scope_id}" if session.scope_kind else "-"
        click.echo(f"{session.id}\t{session.origin}\t{scope}\t{state}")


@service_users.command("end-sessions")
@CONFIG_OPTION
@click.argument("user_id")
@click.option("--session", "session_id", help="End only this session (es-...).")
@expected_errors
def service_users_end_sessions(config_file: Path, user_id: str,
                               session_id: str | None) -> None:
    """End a service user's embed sessions; their next request gets 401."""
    _service_user(config_file, user_id)
    embeds = _embed_store(config_file)
    try:
        ended = embeds.revoke(user_id, session_id)
    finally:
        embeds.close()
    if session_id is not None and ended == 0:
        raise click.ClickException(f"no open embed session {session_id!r} of {user_id!r}")
    message = ngettext(
        "ended {count} embed session of {user_id}",
        "ended {count} embed sessions of {user_id}",
        ended,
    )
    click.echo(message.format(count=ended, user_id=user_id))


def _service_user(config_file: Path, user_id: str):
    user = _run_with_store(config_file, lambda store: store.get_user(user_id))
    if user is None or user.type != "service":
        raise click.ClickException(f"no service user with id {user_id!r}")
    return user


def _embed_store(config_file: Path):
    from gateway.config import load_config
    from gateway.store import SQLiteEmbedStore

    return SQLiteEmbedStore(load_config(config_file).store_path)


@main.command()
@CONFIG_OPTION
@click.option("--port", type=int, help="Gateway port (default: listen.port, or a free one).")
@click.option("--upstream-port", type=int, help="Sample API port (default: a free one).")
@click.option("--once", is_flag=True, help="Print the results and stop both processes.")
@expected_errors
def demo(config_file: Path, port: int | None, upstream_port: int | None, once: bool):
    """Start the sample chat API and the gateway, and show the roles at work."""
    from gateway.demo import run_demo

    run_demo(config_file, port=port, upstream_port=upstream_port, once=once)


@main.command()
@CONFIG_OPTION
@click.option("--as", "user_id", required=True, help="Id of the user in the store.")
@click.argument("method")
@click.argument("path")
@click.option("--object", "object_json",
              help="The object's owner field as JSON, e.g. '{\"assignee\": \"u-op-1\"}'.")
@click.option("--body", "body_json",
              help="The request body as a JSON object; its top-level keys are checked.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@expected_errors
def explain(config_file, user_id, method, path, object_json, body_json, as_json):
    """Decide METHOD PATH for a user offline and show why.

    Exit status: 0 allow, 1 deny, 3 when the decision needs the object (give
    --object).  Nothing is sent to the upstream.
    """
    import json

    from gateway.policytools.explain import (
        format_decision,
        parse_json_object,
        subject_from_store,
    )
    from gateway.policytools.offline import ALLOW, DENY, ObjectError, load_decider

    try:
        obj = parse_json_object(object_json, "--object")
        body = parse_json_object(body_json, "--body")
    except ValueError as error:
        raise click.BadParameter(str(error)) from None

    decider = load_decider(config_file)
    subject = subject_from_store(decider.config, user_id)
    try:
        decision = decider.decide(subject, method, path, obj=obj,
                                  fields=frozenset(body or ()))
    except ObjectError as error:
        raise click.BadParameter(str(error), param_hint="--object") from None

    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        click.echo(format_decision(decision))
    exit_codes = {ALLOW: 0, DENY: 1}
    raise SystemExit(exit_codes.get(decision.decision, 3))


TEST_PROGRESS_EVERY = 1000


@main.command("test")
@CONFIG_OPTION
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False,
                                                   path_type=Path))
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the results as JUnit XML to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print failed cases only.")
@expected_errors
def test_cases(config_file: Path, files: tuple[Path, ...], junit_file: Path | None,
               quiet: bool):
    """Run YAML test cases against the policy files; exit 1 if any fails.

    FILES default to tests/*.yaml in the folder of the configured roles.csv.
    """
    from gateway.policytools.cases import load_cases, run_case
    from gateway.policytools.junit import write_junit
    from gateway.policytools.offline import load_decider

    decider = load_decider(config_file)
    if not files:
        folder = decider.config.roles_path.parent / "tests"
        files = tuple(sorted(folder.glob("*.yaml")))
        if not files:
            raise click.ClickException(f"no test files given and no *.yaml in {folder}")

    results = []
    failed = 0
    for file in files:
        for case in load_cases(file):
            result = run_case(decider, case)
            results.append(result)
            failed += not result.passed
            if not (quiet and result.passed):
                _echo_result(result)
            if len(results) % TEST_PROGRESS_EVERY == 0:
                click.echo(f"test: {len(results)} cases run, {failed} failed", err=True)

    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if junit_file is not None:
        write_junit(results, junit_file)
    if failed:
        raise SystemExit(1)


def _echo_result(result) -> None:
    case = result.case
    where = f"{case.file}:{case.line}"
    if result.passed:
        click.echo(f"PASS {where} {case.name}")
        return

    click.echo(f"FAIL {where} {case.name}")
    for failure in result.failures:
        click.echo(f"    {failure}")


@main.command()
@CONFIG_OPTION
@click.argument("old_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--requests", "requests_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines: decision log lines or {role, method, path, object}.")
@expected_errors
def diff(config_file: Path, old_dir: Path, new_dir: Path, requests_file: Path):
    """Replay requests against two policy folders and list every decision that flips.

    Each folder contains model.conf and roles.csv; routes, roles and the rest come
    from the config.  Exit status: 0 when nothing flips, 1 when something does.
    """
    from gateway.config import load_config
    from gateway.policytools.diff import diff_policies, format_flip, format_summary
    from gateway.policytools.offline import (
        OfflineDecider,
        build_routes,
        load_policy_tree,
    )

    config = load_config(config_file)
    routes = build_routes(config)
    old = OfflineDecider(config, load_policy_tree(config, old_dir), routes)
    new = OfflineDecider(config, load_policy_tree(config, new_dir), routes)

    def progress(count: int) -> None:
        click.echo(f"diff: {count} requests replayed", err=True)

    report = diff_policies(old, new, requests_file, progress=progress)
    for flip in report.flips.values():
        click.echo(format_flip(flip))
    click.echo(format_summary(report))
    if report.flips:
        raise SystemExit(1)


def _check_role(config_file: Path, role: str) -> None:
    from gateway.config import load_config

    roles = load_config(config_file).roles
    if role not in roles:
        raise click.ClickException(
            f"unknown role {role!r}; roles in {config_file}: {', '.join(roles)}"
        )


def _run_with_store(config_file: Path, operation):
    """Open the configured store, await `operation(store)`, close the store."""
    from gateway.config import load_config

    config = load_config(config_file)
    store = SQLiteUserStore(config.store_path, owner_role=config.roles[0])

    async def run():
        try:
            return await operation(store)
        finally:
            await store.close()

    return asyncio.run(run())


if __name__ == "__main__":
    main()
