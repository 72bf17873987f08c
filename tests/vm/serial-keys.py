#!/usr/bin/env python3
"""Type into a guest's serial console as a person would: wait for a text, then press keys.

Usage: serial-keys.py LOG SOCKET SCRIPT

LOG is the serial console's log (qemu's chardev logfile), SOCKET qemu's unix socket for the
same serial port. SCRIPT has one step a line: TEXT<TAB>KEYS. The step waits until TEXT shows
in the log after where the previous step's text was seen, then sends KEYS, one key at a time
(0.3 s apart, so that GRUB redraws its menu between two keys). KEYS is a space separated list
of key names: up, down, enter, esc, or a literal character. An escape sequence is written in
one piece (GRUB waits only ~100 ms for the rest of one). Lines starting with # are comments.
Exits 0 when every step ran, 1 if the guest went away first (the socket closed).
"""

import socket
import sys
import threading
import time

KEYS = {"up": b"\x1b[A", "down": b"\x1b[B", "enter": b"\r", "esc": b"\x1b"}


def wait_for(log, text, start):
    needle = text.encode()
    while True:
        try:
            with open(log, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        # GRUB draws the menu with escape sequences; those between words are left alone.
        at = data.find(needle, start)
        if at >= 0:
            return at + len(needle)
        time.sleep(0.1)


def drain(sock):
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def main():
    log, sock_path, script = sys.argv[1:4]
    steps = []
    with open(script) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            text, keys = line.split("\t", 1)
            steps.append((text, keys.split()))
    sock = None
    for _ in range(100):
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(sock_path)
            break
        except OSError:
            sock = None
            time.sleep(0.1)
    if sock is None:
        print(f"serial-keys: cannot connect to {sock_path}", file=sys.stderr)
        return 1
    # What qemu sends us is in the log already; read it so that qemu never waits on us.
    threading.Thread(target=drain, args=(sock,), daemon=True).start()
    start = 0
    for text, keys in steps:
        start = wait_for(log, text, start)
        print(f"serial-keys: saw {text!r}, pressing {' '.join(keys)}", file=sys.stderr)
        for key in keys:
            time.sleep(0.3)
            try:
                sock.sendall(KEYS.get(key, key.encode()))
            except OSError:
                return 1
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
