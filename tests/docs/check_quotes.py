#!/usr/bin/env python3
"""Check what the pages quote from `make diff` against the real diff.

    tests/docs/check_quotes.py [PAGE.md ...]   (default: docs/step0*.md)

Two kinds of quotation are checked (tests/docs/samples.bats runs this):

- a diff block on a chapter page (```diff, ~~~{.diff}, \\code{.diff}, or an
  indented block that starts with `@@ `, `diff -` or `--- stepNN_`):
  each hunk, its @@ line aside, must occur line for line in `diff -ruN` of
  the two steps its `---`/`+++` headers name (without headers: the previous
  chapter and the page's). An elided hunk (a line `...`) is checked piece by
  piece, in order.
- `carried unchanged from stepNN_x: FILES` in backquotes (it may span
  lines): it must be the line `make diff` prints, for the `make diff FROM=
  TO=` just before it, or else for the step it names and the page's
  chapter (the next one, on that step's own page).

Prints one line per quotation that does not match; exit 1 if any.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FENCE = re.compile(r'^(```|~~~)\s*\{?\.?diff\}?\s*$')
CODE = re.compile(r'^\\code\{\.diff\}\s*$')
CARRIED = re.compile(r'`(carried\s+unchanged\s+from\s+(step\d\d)_[^`]*)`')
MAKE_DIFF = re.compile(r'make diff FROM=(\d+) TO=(\d+)')


def step_dir(num):
    """The directory of chapter NUM (two digits), or None."""
    found = sorted(glob.glob(os.path.join(ROOT, 'step%s_*' % num)))
    return os.path.basename(found[0]) if found else None


def make_diff(a, b):
    """stdout and stderr of `make diff FROM=a TO=b`."""
    p = subprocess.run(['make', '--no-print-directory', '-s', 'diff', 'FROM=' + a, 'TO=' + b],
                       cwd=ROOT, capture_output=True, text=True)
    return p.stdout, p.stderr


INDENTED_DIFF = re.compile(r'^    (@@ |diff -|--- step\d\d_)')


def blocks(lines):
    """(line number, [lines]) of every diff block of a page."""
    out, i = [], 0
    while i < len(lines):
        if INDENTED_DIFF.match(lines[i]) and (i == 0 or not lines[i - 1].strip()):
            start, body = i + 1, []
            while i < len(lines) and (lines[i].startswith('    ') or lines[i] == ''):
                body.append(lines[i][4:])
                i += 1
            while body and body[-1] == '':
                body.pop()
            out.append((start, body))
            continue
        m = FENCE.match(lines[i]) or CODE.match(lines[i])
        if m:
            end = '\\endcode' if CODE.match(lines[i]) else None
            fence = None if end else m.group(1)
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not (lines[i].strip() == end if end else lines[i].startswith(fence)):
                body.append(lines[i])
                i += 1
            out.append((start, body))
        i += 1
    return out


def occurs(piece, text):
    """PIECE (a list of lines) occurs as consecutive lines of TEXT."""
    n = len(piece)
    return any(text[k:k + n] == piece for k in range(len(text) - n + 1))


def check_page(path):
    """Problems of one page, as strings."""
    m = re.search(r'step(\d\d)\.md$', path)
    if not m:
        return []
    num = m.group(1)
    prev = '%02d' % (int(num) - 1)
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    problems = []
    name = os.path.relpath(path, ROOT)
    for start, body in blocks(lines):
        heads = [l for l in body if l.startswith('--- ') or l.startswith('+++ ')]
        steps = re.findall(r'step(\d\d)_', ' '.join(heads))
        a, b = (steps[0], steps[-1]) if len(steps) >= 2 else (prev, num)
        real = make_diff(a, b)[0].split('\n')
        hunk = []
        for l in body + ['@@']:
            if l.startswith('@@') or l.startswith('diff ') or l.startswith('--- ') or l.startswith('+++ '):
                pieces, cur = [], []
                for h in hunk:
                    if h.strip() == '...':
                        pieces.append(cur)
                        cur = []
                    else:
                        cur.append(h)
                pieces.append(cur)
                pos = 0
                for piece in [p for p in pieces if p]:
                    found = next((k for k in range(pos, len(real) - len(piece) + 1)
                                  if real[k:k + len(piece)] == piece), None)
                    if found is None:
                        problems.append('%s:%d: a diff hunk not in make diff FROM=%s TO=%s: %r'
                                        % (name, start, a, b, piece[0][:70]))
                        break
                    pos = found + len(piece)
                hunk = []
            else:
                hunk.append(l)
    text = '\n'.join(lines)
    for m in CARRIED.finditer(text):
        quote, frm = ' '.join(m.group(1).split()), m.group(2)[4:]
        if '...' in quote or '\u2026' in quote:
            continue
        line = text.count('\n', 0, m.start()) + 1
        # The diff meant: the last `make diff FROM= TO=` just before the
        # quote that starts at the step it names; else the page's chapter
        # (or, on the page of the step it names, the next one).
        pairs = [p for p in MAKE_DIFF.findall(text[max(0, m.start() - 600):m.start()])
                 if '%02d' % int(p[0]) == frm]
        to = '%02d' % int(pairs[-1][1]) if pairs else (num if frm != num else '%02d' % (int(num) + 1))
        err = make_diff(frm, to)[1].split('\n')
        if quote not in err:
            problems.append('%s:%d: `%s` but make diff FROM=%s TO=%s says %r'
                            % (name, line, quote, frm, to, err[0]))
    return problems


def main(argv):
    pages = argv[1:] or sorted(glob.glob(os.path.join(ROOT, 'docs', 'step0*.md')))
    problems = [p for page in pages for p in check_page(page)]
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
