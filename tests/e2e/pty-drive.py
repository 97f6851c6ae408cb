#!/usr/bin/env python3
"""Drive a command through a real pseudo-terminal, as a person at a terminal.

usage: pty-drive.py SCRIPT -- COMMAND [ARG...]

SCRIPT is a file of steps, one per line:
    size ROWS COLS        set the terminal size (before start: the initial size)
    send TEXT             type TEXT (Python escapes: \\r, \\x03 for Ctrl-C ...)
    expect TEXT           wait (up to 60 s) until the output so far contains TEXT
    sleep SECONDS
    run SHELL-COMMAND     run a command on the host (e.g. kill the VM under the terminal)
    close                 stop reading; wait for the command to exit
Prints the whole output to stdout at the end, then a line
"PTYDRIVE status=N attrs=same|changed" (whether the terminal's attributes are
what they were before the command ran: raw mode restored).
Exits 2 if an expect times out (printing what was seen).
"""
import codecs
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main():
    script = open(sys.argv[1]).read().splitlines()
    cmd = sys.argv[sys.argv.index("--") + 1:]
    steps = [l.split(" ", 1) for l in script if l.strip()]
    rows, cols = 24, 80
    while steps and steps[0][0] == "size":
        rows, cols = map(int, steps.pop(0)[1].split())
    master, slave = pty.openpty()
    set_size(slave, rows, cols)
    before = termios.tcgetattr(slave)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(master)
        os.execvp(cmd[0], cmd)
    out = b""

    def pump(timeout):
        """Read what comes within timeout: "data", "idle" or "eof"."""
        nonlocal out
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            return "idle"
        try:
            data = os.read(master, 65536)
        except OSError:
            return "eof"
        if not data:
            return "eof"
        out += data
        return "data"

    for step in steps:
        op, arg = step[0], (step[1] if len(step) > 1 else "")
        if op == "send":
            os.write(master, codecs.decode(arg, "unicode_escape").encode("latin-1"))
        elif op == "expect":
            want = codecs.decode(arg, "unicode_escape").encode("latin-1")
            end = time.time() + 60
            while want not in out and time.time() < end:
                if pump(0.2) == "eof":
                    break
            if want not in out:
                sys.stdout.write(out.decode("utf-8", "replace"))
                print("\nPTYDRIVE expect timed out: %r" % want)
                os.kill(pid, 9)
                sys.exit(2)
        elif op == "size":
            r_, c_ = map(int, arg.split())
            set_size(master, r_, c_)
        elif op == "sleep":
            end = time.time() + float(arg)
            while time.time() < end:
                pump(0.05)
        elif op == "run":
            subprocess.call(arg, shell=True)
        elif op == "close":
            break
    end = time.time() + 60
    status = None
    while time.time() < end:
        pump(0.1)
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
            break
    while pump(0.1) == "data":
        pass
    if status is None:
        os.kill(pid, 9)
        status = "timeout"
    after = termios.tcgetattr(slave)
    sys.stdout.write(out.decode("utf-8", "replace"))
    print("\nPTYDRIVE status=%s attrs=%s" % (status, "same" if before == after else "changed"))


main()
