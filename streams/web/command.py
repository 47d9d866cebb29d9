"""`stockflow web user add|list|remove`: the page's users file from the command line."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from streams.kernel.settings import Settings
from streams.web.users import UsersError, UserStore, provisioning_uri, users_path

PASSWORD_ENV = "STOCKFLOW_WEB_PASSWORD"  # noqa: S105 - the variable's name


def _password() -> str:
    """From STOCKFLOW_WEB_PASSWORD, or asked twice at the terminal without echo."""
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UsersError("the two passwords differ; nothing was changed")
    return first


def user_command(settings: Settings, args: argparse.Namespace) -> int:
    store = UserStore(users_path(settings))
    try:
        if args.user_action == "list":
            for user in store.all():
                factor = "TOTP" if user.totp_secret else "-"
                print(f"{user.login}\t{user.role}\t{factor}")
            return 0
        if not args.name:
            print(f"stockflow web user {args.user_action}: give the user's login", file=sys.stderr)
            return 2
        if args.user_action == "remove":
            if not store.remove(args.name):
                print(f"stockflow web user remove: no user {args.name!r}", file=sys.stderr)
                return 1
            print(f"removed {args.name} from {store.path}")
            return 0
        user = store.add(args.name, args.role, _password(), replace=args.replace)
    except UsersError as exc:
        print(f"stockflow web user {args.user_action}: {exc}", file=sys.stderr)
        return 2
    print(f"{user.login} ({user.role}) written to {store.path}")
    if user.totp_secret:
        print(
            "Second factor: add this to an authenticator app now (shown once):\n"
            f"  {provisioning_uri(user)}"
        )
    return 0
