"""``calsync doctor``: run every check of ``calsync.scheduler.doctor`` and print the results.

One line per check (``ok   name: detail`` or ``FAIL name: detail`` followed
by ``     fix: ...``), or ``--json``; exit 0 when everything is fine, else 1.
It never migrates the database or creates the state dir, so it does not use
``Runtime.store`` or ``Runtime.providers`` (their adapters retry for minutes).
"""

from __future__ import annotations

import click

from calsync.cli._app import Runtime, main, pass_runtime, print_json
from calsync.events import load_secrets
from calsync.scheduler.accounts import new_session
from calsync.scheduler.doctor import Check, cap_timeouts, run_checks


@main.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"checks": [...]} as JSON.')
@pass_runtime
def doctor(rt: Runtime, as_json: bool) -> None:
    """Check config, state dir, database, accounts, clock, push URL and webhooks.

    Each failure comes with what to do about it. Exits 1 when any check fails.
    """
    with new_session() as session:
        checks = run_checks(
            lambda: rt.settings,
            clock=rt.clock,
            session=cap_timeouts(session),
            load_secrets=load_secrets,
        )
    if as_json:
        print_json({"checks": [check.as_dict() for check in checks]})
    else:
        for check in checks:
            click.echo(format_check(check))
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(1)


def format_check(check: Check) -> str:
    """``ok   name: detail``, or ``FAIL name: detail`` and an indented ``fix:`` line."""
    if check.ok:
        return f"ok   {check.name}: {check.detail}"
    line = f"FAIL {check.name}: {check.detail}"
    return f"{line}\n     fix: {check.fix}" if check.fix else line
