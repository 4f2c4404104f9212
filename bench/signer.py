"""The server-side session id's signature: our one pass against itsdangerous's way.

    python bench/signer.py [--rounds 15] [--number 20000]

The signer is the one ``ServerSideSessionInterface`` builds (its salt, the key
derived once, SHA-256). ``unsign`` of a valid id cookie is timed against
``_unsign_plain``, the way every cookie took before (and every token the one
pass does not accept still takes); ``sign`` against itsdangerous's
``Signer.sign``. Both of each pair run round-robin in one process, in CPU
time (``time.process_time``), and the best round is reported: a few seconds
in all, no server, no store.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable

from itsdangerous import Signer

from wsgi_sessions import ServerSideSessionInterface, SessionConfig
from wsgi_sessions._signing import StrictSigner
from wsgi_sessions.server_session import new_session_id


def best_of(funcs: dict[str, Callable[[], object]], rounds: int, number: int) -> dict[str, float]:
    """Microseconds per call of each of ``funcs``: the best of ``rounds``
    rounds of ``number`` calls, every one timed once per round."""
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, func in funcs.items():
            spent = timeit.Timer(func, timer=time.process_time).timeit(number)
            best[name] = min(best[name], spent / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()

    config = SessionConfig({"secret_key": "bench-" + "k" * 32})
    keys = ServerSideSessionInterface().get_id_keys(config)
    assert keys is not None
    signer = keys[0].signer
    assert isinstance(signer, StrictSigner)
    sid = new_session_id()
    token = signer.sign(sid).decode("ascii")
    assert token == Signer.sign(signer, sid).decode("ascii")
    assert signer.unsign(token) == signer._unsign_plain(token) == sid.encode()

    results = best_of(
        {
            "unsign (one pass)": lambda: signer.unsign(token),
            "unsign (_unsign_plain)": lambda: signer._unsign_plain(token),
            "sign (one pass)": lambda: signer.sign(sid),
            "sign (Signer.sign)": lambda: Signer.sign(signer, sid),
        },
        args.rounds,
        args.number,
    )
    for name, micros in results.items():
        print(f"{name:24} {micros:6.2f} µs")


if __name__ == "__main__":
    main()
