#!/usr/bin/python3
"""The manual pages render cleanly and cannot drift from the program.

    /usr/bin/python3 tests/install/check_man.py BUILD_DIR SOURCE_DIR

- Each page of BUILD_DIR/man (ternd.8, ternd.conf.5, tern.1) renders with
  `groff -man -Tutf8 -ww` without a warning, and with `man -l` when man is
  there.
- docs/man/md2man.awk reads README's table without a warning.
- Every directive the configuration parser accepts is the tag of an entry
  of ternd.conf(5): the names are read from the parser's own tables
  (src/broker/config_{listener,broker,load}.c's rows, config_bridge.c's and
  config_archive.c's lists of names), so a directive added to the parser
  without a line in README.md's table (of which ternd.conf(5) is made)
  fails here.
- Every option ternd's command line parses (src/broker/config.c) is in
  ternd(8), and every `tern` command has its section in tern(1).
Exits 1 with the list of what is wrong.
"""

import os
import re
import shutil
import subprocess
import sys

PAGES = ["ternd.8", "ternd.conf.5", "tern.1"]


def render_problems(page):
    out = []
    r = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True, text=True
    )
    if r.returncode != 0 or r.stderr.strip():
        out.append(f"groff -ww {page}: rc {r.returncode}: {r.stderr.strip()}")
    if shutil.which("man"):
        # man's own checks (it runs groff with -ww through --warnings).
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        r = subprocess.run(
            ["man", "--warnings", "-l", page],
            capture_output=True,
            text=True,
            env=env,
        )
        if r.returncode != 0 or r.stderr.strip():
            out.append(f"man -l {page}: rc {r.returncode}: {r.stderr.strip()}")
    return out


def ascii_text(page):
    r = subprocess.run(
        ["groff", "-man", "-Tascii", "-P-cbou", page],
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


def parser_directives(src):
    broker = os.path.join(src, "src", "broker")
    names = set()
    for f in ("config_listener.c", "config_broker.c", "config_load.c"):
        text = open(os.path.join(broker, f)).read()
        names |= set(re.findall(r'^\s*\{"([a-z0-9_.]+)", K_[A-Z]+', text, re.M))
    # The bridge's and the archive's: the names of their lists, and the
    # block openers each compares the key with.
    for f, array in (("config_bridge.c", "names"), ("config_archive.c", "known")):
        text = open(os.path.join(broker, f)).read()
        m = re.search(r"static const char \*const " + array + r"\[\] = \{(.*?)\};", text, re.S)
        if not m:
            raise SystemExit(f"check_man: no {array}[] in {f}: update check_man.py")
        names |= set(re.findall(r'"([a-z0-9_.]+)"', m.group(1)))
        names |= set(re.findall(r'strcmp\(key, "([a-z0-9_.]+)"\) == 0\)\s*return open_', text))
    return names


def man_tags(page):
    """The bold words of every .TP entry's tag line."""
    lines = open(page).read().split("\n")
    tags = set()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == ".TP":
            tags |= set(re.findall(r"\\fB([^\\]+)\\fR", lines[i + 1]))
    return tags


def ternd_options(src):
    text = open(os.path.join(src, "src", "broker", "config.c")).read()
    body = text[text.index("enum tern_err config_from_args") :]
    return set(re.findall(r'strcmp\((?:a|argv\[i\]), "(-[-a-zA-Z]+)"\) == 0', body))


def main():
    build, src = sys.argv[1], sys.argv[2]
    man = os.path.join(build, "man")
    problems = []
    for p in PAGES:
        path = os.path.join(man, p)
        if not os.path.exists(path):
            problems.append(f"{path} was not built")
            continue
        problems += render_problems(path)
    if problems:
        print("\n".join(problems))
        return 1

    # md2man.awk reads every row of README's table (a row it cannot read
    # is left out of the page with a warning).
    r = subprocess.run(
        [
            "awk",
            "-v", f"readme={os.path.join(src, 'README.md')}",
            "-v", f"mosq={os.path.join(src, 'docs/man/mosquitto-directives')}",
            "-v", "version=0",
            "-f", os.path.join(src, "docs/man/md2man.awk"),
            os.path.join(src, "docs/man/ternd.conf.5.in"),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 or r.stderr.strip():
        problems.append(f"md2man.awk: rc {r.returncode}: {r.stderr.strip()}")

    directives = parser_directives(src)
    if len(directives) < 100:
        problems.append(f"found only {len(directives)} directives in the parser: update check_man.py")
    tags = man_tags(os.path.join(man, "ternd.conf.5"))
    for d in sorted(directives - tags):
        problems.append(f"ternd.conf(5) has no entry for directive '{d}' (add it to README.md's table)")

    options = ternd_options(src)
    if len(options) < 10:
        problems.append(f"found only {len(options)} ternd options: update check_man.py")
    text = ascii_text(os.path.join(man, "ternd.8"))
    for o in sorted(options):
        if not re.search(r"(^|[\s\[,(])" + re.escape(o) + r"($|[\s\],|)])", text, re.M):
            problems.append(f"ternd(8) does not describe option {o}")

    text = ascii_text(os.path.join(man, "tern.1"))
    for section, usage in (
        ("PUB", "Usage: tern pub"),
        ("SUB", "Usage: tern sub"),
        ("BENCH", "Usage: tern bench"),
        ("PASSWD", "Usage: tern passwd"),
        ("HISTORY", "Usage: tern history"),
    ):
        if not re.search(r"^" + section + r"$", text, re.M) or usage not in text:
            problems.append(f"tern(1) has no {section} section with its usage")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"check_man: ok ({len(directives)} directives, {len(options)} ternd options)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
