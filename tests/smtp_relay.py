"""A real SMTP relay for bealert's e-mail provider tests (aiosmtpd).

    smtp_relay.py PORT OUT [--account USER:PASSWORD] [--defer-every N]

Writes each message it takes as one JSON line to OUT: the envelope and the
whole message as sent. Mailboxes at gone.example do not exist (550). With
--account it asks for that login (AUTH PLAIN/LOGIN, allowed without TLS
here); with --defer-every N every Nth message is deferred (451), as a
greylisting relay does. Prints "ready" once it listens.
"""

import argparse
import json
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay:
    def __init__(self, out, defer_every):
        self.out = out
        self.defer_every = defer_every
        self.seen = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@gone.example"):
            return "550 5.1.1 <%s>: no such mailbox" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.seen += 1
            if self.defer_every and self.seen % self.defer_every == 0:
                return "451 4.7.1 greylisted, try again later"
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "from": envelope.mail_from,
                            "to": envelope.rcpt_tos,
                            "login": session.auth_data.decode()
                            if isinstance(session.auth_data, bytes)
                            else None,
                            "data": envelope.content.decode("utf-8", "replace"),
                        }
                    )
                    + "\n"
                )
        return "250 2.0.0 OK: queued"


def authenticator(account):
    user, password = account.split(":", 1)

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("out")
    p.add_argument("--account")
    p.add_argument("--defer-every", type=int, default=0)
    a = p.parse_args()
    kwargs = {}
    if a.account:
        kwargs = dict(
            authenticator=authenticator(a.account),
            auth_required=True,
            auth_require_tls=False,
        )
    c = Controller(Relay(a.out, a.defer_every), hostname="127.0.0.1", port=a.port, **kwargs)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
