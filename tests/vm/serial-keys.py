#!/usr/bin/env python3
"""Type into a guest's serial console as a person would: wait for a text, then press keys.

Usage: serial-keys.py LOG SOCKET SCRIPT

LOG is the serial console's log (qemu's chardev logfile), SOCKET qemu's unix socket for the
same serial port. SCRIPT has one step a line: TEXT<TAB>KEYS. The step waits until TEXT shows
in what the socket brings after where the previous step's text was seen (not in the log: while
a client is connected, qemu's logfile may hold a byte twice where a write to the socket was
retried), then sends KEYS, one key at a time
(0.3 s apart, so that GRUB redraws its menu between two keys). KEYS is a space separated list
of key names: up, down, enter, esc, or a literal character. An escape sequence is written in
one piece (GRUB waits only ~100 ms for the rest of one). Lines starting with # are comments.
Exits 0 when every step ran, 1 if the guest went away first (the socket closed).
"""

import re
import socket
import sys
import threading
import time

KEYS = {"up": b"\x1b[A", "down": b"\x1b[B", "enter": b"\r", "esc": b"\x1b"}


def collapse(b):
    return re.sub(rb"(.)\1+", rb"\1", b, flags=re.DOTALL)


class Console:
    """What the serial port sent, as read from the socket."""

    def __init__(self, sock):
        self.data = bytearray()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self.read, args=(sock,), daemon=True).start()

    def read(self, sock):
        try:
            while True:
                b = sock.recv(65536)
                if not b:
                    break
                with self.lock:
                    self.data += b
        except OSError:
            pass
        self.closed = True

    def wait_for(self, text, start):
        """The offset just past TEXT's first showing at or after START; None if the guest went.

        Runs of one character count as one, in TEXT and on the console alike: a byte the
        serial line repeats ("beffore", seen under TCG) does not hide a text a person would
        read."""
        needle = collapse(text.encode())
        while True:
            with self.lock:
                at = collapse(bytes(self.data)).find(needle, start)
            if at >= 0:
                return at + len(needle)
            if self.closed:
                return None
            time.sleep(0.1)


def main():
    _log, sock_path, script = sys.argv[1:4]
    steps = []
    with open(script) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            text, keys = line.split("\t", 1)
            steps.append((text, keys.split()))
    sock = None
    # qemu waits for this connection before it starts the guest (run-guest.sh: wait=on).
    for _ in range(600):
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
    # Read all the time, so that qemu never waits on us.
    console = Console(sock)
    start = 0
    for text, keys in steps:
        start = console.wait_for(text, start)
        if start is None:
            print(f"serial-keys: the guest went before {text!r} showed", file=sys.stderr)
            return 1
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
