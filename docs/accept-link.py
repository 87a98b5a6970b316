#!/usr/bin/env python3
"""Prints the accept link of the newest invitation email sent to an address.

Usage: python3 docs/accept-link.py [--token] MAIL_DIR EMAIL

Reads the `.eml` files the mailer writes when no SMTP server is configured
(`.wowchat/mail/` by default), decodes them as a mail client would
(quoted-printable, base64, folded headers), and prints the link of the
newest one addressed to EMAIL; with --token, only its token. A grep on the
raw file is not enough: quoted-printable splits long lines with `=` and
encodes `=` as `=3D`, so the token it finds is cut or wrong.
"""

import email
import email.policy
import pathlib
import re
import sys
from urllib.parse import parse_qs, urlparse


def main(argv):
    token_only = "--token" in argv
    args = [a for a in argv if a != "--token"]
    if len(args) != 2:
        sys.exit(__doc__)
    mail_dir, address = pathlib.Path(args[0]), args[1].lower()
    newest = None
    for path in mail_dir.glob("*.eml"):
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        if address not in str(message.get("To", "")).lower():
            continue
        body = message.get_body(preferencelist=("plain",))
        if body is None:
            continue
        # `#token=` (the default) or `?token=` (WOWCHAT_ACCEPT_TOKEN_IN=query,
        # and the join request confirmation's link).
        match = re.search(r"\S+[?&#]token=[A-Za-z0-9_-]+", body.get_content())
        if match is None:
            continue
        sent = path.stat().st_mtime
        if newest is None or sent > newest[0]:
            newest = (sent, match.group(0))
    if newest is None:
        sys.exit(f"no invitation email to {address} in {mail_dir}")
    link = newest[1]
    parts = urlparse(link)
    token = (parse_qs(parts.fragment) or parse_qs(parts.query))["token"][0]
    print(token if token_only else link)


if __name__ == "__main__":
    main(sys.argv[1:])
