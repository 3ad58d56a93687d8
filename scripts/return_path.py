"""Prints the return path of a message for the local stack: make return-path ACCOUNT=acme MESSAGE=msg-1.

Producers on AWS call webhooks.returned_mail.return_path.make with the deployed stack's secret
(the `ReturnPathSecretArn` output) and `ReturnPathDomain`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from devstack import smtp  # noqa: E402
from webhooks.returned_mail import return_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--account", required=True)
    parser.add_argument("--message", required=True)
    args = parser.parse_args(argv)
    try:
        address = return_path.make(
            args.account, args.message, secret=smtp.secret().encode(), domain=smtp.domain()
        )
    except return_path.ReturnPathError as exc:
        parser.error(str(exc))
    print(address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
