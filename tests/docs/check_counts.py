#!/usr/bin/env python3
"""Check the counts a chapter page gives for its diff against the real diff.

    tests/docs/check_counts.py [PAGE.md ...]   (default: docs/step0[2-9].md)

A page's diff section (the heading with `{#stepNN_diff}`, to the next `## `)
describes `diff -ruN` of the previous chapter and its own in numbers, and
numbers go stale silently when the code changes. Every count of these forms
in that section is recomputed from the real diff:

- `N changed lines`: the whole diff's changed lines (+ and - lines);
  `A lines added and R removed`; `in K hunks` (a digit or a word);
- `N are room.c and room.h` (or `the room module (room.c and room.h)`):
  those files' changed lines;
- a table row whose first cell is a hunk header in backquotes,
  `| \\`@@ -84,10 +104,16 @@\\` | +9 -3 | ...`: that hunk's + and - lines;
- a table row whose first cell names files (`child.c`, `shm.h, shm.c`),
  with cells for hunks and `+A -R` (or `+A` for files that arrive): those
  files' hunks and lines, summed;
- a bullet `**FILES** (K hunks, +A -R)` or `**FILES** (N lines, new)`.

Prints one line per count that is wrong; exit 1 if any.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = {w: i for i, w in enumerate(
    'zero one two three four five six seven eight nine ten eleven twelve '
    'thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty'.split())}
NUM = r'(\d[\d,]*)'
PM = r'\+' + NUM + r'(?:\s*[−-]\s*' + NUM + r')?'
FILE = r'[\w.]+\.[ch]'
FILES = FILE + r'(?:(?:, | and )' + FILE + r')*'


def num(text):
    """An integer from '3,043' or 'seven'."""
    return WORDS[text] if text in WORDS else int(text.replace(',', ''))


def step_dirs():
    """Chapter directories in order."""
    return sorted(os.path.basename(d) for d in glob.glob(os.path.join(ROOT, 'step[0-9][0-9]_*'))
                  if os.path.isdir(d))


class Diff:
    """Counts of `diff -ruN FROM TO`: per file, per hunk, in all."""

    def __init__(self, a, b):
        out = subprocess.run(['diff', '-ruN', a, b], cwd=ROOT, capture_output=True,
                             text=True, errors='replace').stdout
        self.files = {}  # name -> [hunks, added, removed]
        self.hunks = []  # (file, header, added, removed)
        name, header, in_header = None, None, False
        for line in out.splitlines():
            if line.startswith('diff -ruN '):
                name = line.split()[-1].split('/', 1)[1]
                self.files[name] = [0, 0, 0]
                in_header = True
                continue
            if in_header and (line.startswith('--- ') or line.startswith('+++ ')):
                continue
            if line.startswith('@@ '):
                in_header = False
                header = line[:line.index(' @@') + 3]
                self.files[name][0] += 1
                self.hunks.append([name, header, 0, 0])
                continue
            if name is None or not self.hunks:
                continue
            if line.startswith('+'):
                self.files[name][1] += 1
                self.hunks[-1][2] += 1
            elif line.startswith('-'):
                self.files[name][2] += 1
                self.hunks[-1][3] += 1

    def total(self, names=None):
        """[hunks, added, removed] of NAMES (default: every file)."""
        names = self.files if names is None else names
        sums = [0, 0, 0]
        for n in names:
            for i, v in enumerate(self.files.get(n, [0, 0, 0])):
                sums[i] += v
        return sums


def section(lines, step):
    """(first line number, lines) of the page's diff section."""
    tag = '{#%s_diff}' % step
    for i, line in enumerate(lines):
        if line.startswith('## ') and tag in line:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith('## ')),
                       len(lines))
            return i + 1, lines[i:end]
    return None, []


def check_page(page, diffs):
    """Problems with the counts of PAGE, one string each."""
    step = os.path.basename(page)[:-3]
    dirs = step_dirs()
    cur = next((d for d in dirs if d.startswith(step + '_')), None)
    if cur is None or dirs.index(cur) == 0:
        return []
    prev = dirs[dirs.index(cur) - 1]
    if (prev, cur) not in diffs:
        diffs[(prev, cur)] = Diff(prev, cur)
    d = diffs[(prev, cur)]
    with open(page, encoding='utf-8') as f:
        first, lines = section(f.read().splitlines(), step)
    if first is None:
        return ['%s: no {#%s_diff} section' % (page, step)]
    bad = []
    hunks, added, removed = d.total()

    def want(lineno, what, shown, real):
        if shown != real:
            bad.append('%s:%d: %s: the page says %s, the diff has %s'
                       % (page, lineno, what, shown, real))

    # Prose may wrap: look at each paragraph joined into one line.
    para, start = [], first
    paras = []
    for k, line in enumerate(lines):
        if line.strip():
            if not para:
                start = first + k
            para.append(line.strip())
        elif para:
            paras.append((start, ' '.join(para)))
            para = []
    if para:
        paras.append((start, ' '.join(para)))
    for lineno, text in paras:
        if text.startswith('|'):
            continue
        for m in re.finditer(NUM + r' changed lines', text):
            want(lineno, 'changed lines', num(m.group(1)), added + removed)
        for m in re.finditer(r'changed lines in (\w+) hunks', text):
            want(lineno, 'hunks', num(m.group(1)), hunks)
        for m in re.finditer(NUM + r' lines added and ' + NUM + r' removed', text):
            want(lineno, 'lines added', num(m.group(1)), added)
            want(lineno, 'lines removed', num(m.group(2)), removed)
        for m in re.finditer(NUM + r' are (?:the room module \()?room\.c and room\.h', text):
            h, a, r = d.total(['room.c', 'room.h'])
            want(lineno, 'room.c and room.h', num(m.group(1)), a + r)
        for m in re.finditer(r'\*\*(' + FILES + r')\*\* \((?:(\w+) hunks, ' + PM
                             + r'|' + NUM + r' lines, new)\)', text):
            names = re.split(r', | and ', m.group(1))
            h, a, r = d.total(names)
            if m.group(5) is not None:
                want(lineno, m.group(1) + ' new lines', num(m.group(5)), a)
                want(lineno, m.group(1) + ' removed lines', 0, r)
            else:
                want(lineno, m.group(1) + ' hunks', num(m.group(2)), h)
                want(lineno, m.group(1) + ' added', num(m.group(3)), a)
                want(lineno, m.group(1) + ' removed', num(m.group(4) or '0'), r)
    for k, line in enumerate(lines):
        if not line.startswith('|'):
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        lineno = first + k
        m = re.fullmatch(r'`(@@ [^`]* @@)`', cells[0])
        if m:
            found = [x for x in d.hunks if x[1] == m.group(1)]
            if len(found) != 1:
                bad.append('%s:%d: hunk %s is %s in the diff'
                           % (page, lineno, m.group(1), 'not' if not found else 'not alone'))
                continue
            pm = next((re.fullmatch(PM, c) for c in cells[1:] if re.fullmatch(PM, c)), None)
            if pm:
                want(lineno, m.group(1) + ' added', num(pm.group(1)), found[0][2])
                want(lineno, m.group(1) + ' removed', num(pm.group(2) or '0'), found[0][3])
            continue
        if not re.fullmatch(FILES, cells[0]):
            continue
        names = re.split(r', | and ', cells[0])
        h, a, r = d.total(names)
        missing = [n for n in names if n not in d.files]
        if missing:
            bad.append('%s:%d: %s not in the diff' % (page, lineno, ', '.join(missing)))
            continue
        if len(cells) > 1 and re.fullmatch(r'\d+', cells[1]):
            want(lineno, cells[0] + ' hunks', int(cells[1]), h)
        pm = next((re.fullmatch(PM, c) for c in cells[1:] if re.fullmatch(PM, c)), None)
        if pm:
            want(lineno, cells[0] + ' added', num(pm.group(1)), a)
            want(lineno, cells[0] + ' removed', num(pm.group(2) or '0'), r)
    return bad


def main(argv):
    pages = argv[1:] or sorted(glob.glob(os.path.join(ROOT, 'docs', 'step0[2-9].md')))
    diffs, bad = {}, []
    for page in pages:
        bad += check_page(page, diffs)
    for b in bad:
        print(os.path.relpath(b, ROOT) if os.path.isabs(b) else b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
