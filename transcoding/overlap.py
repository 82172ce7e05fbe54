"""Whether two path templates can match one request path, with an example path.

`edge check` uses this to find the templates whose winner depends on the router:
edge (transcoding/matcher.py) picks the more specific template for a path several
match, grpc-gateway the one registered last. Each template is a small automaton
over segments (a literal, ``*``, and ``**`` as a loop), and the two are run
side by side over the literals either names plus one segment neither names; a
breadth-first search finds a path both accept, if there is one. A verb template
and one without a verb overlap where the latter's last segment can take
``:verb`` as data (a wildcard can, a literal cannot: literals never hold ``:``),
as grpc-gateway matches them.
"""
from __future__ import annotations

from collections import deque

from .matcher import normalize_segment
from .template import PathTemplate

__all__ = ["example_overlap"]

_ANY = None  # a transition any segment takes


class _Automaton:
    """States 0..n over the template's segments (n accepts), plus one state inside a '**'."""

    def __init__(self, template: PathTemplate, empty_anywhere: bool) -> None:
        segments = template.segments
        self.final = len(segments)
        self.moves: dict[int, list[tuple[str | None, int]]] = {}
        self.skips: dict[int, list[int]] = {}  # moves taking no segment
        inside = len(segments) + 1
        for j, segment in enumerate(segments):
            if segment.kind == "literal":
                self.moves[j] = [(normalize_segment(segment.value), j + 1)]
            elif segment.kind == "single":
                self.moves[j] = [(_ANY, j + 1)]
            else:
                self.moves[j] = [(_ANY, inside)]
                self.moves[inside] = [(_ANY, inside)]
                self.skips[inside] = [j + 1]
                if empty_anywhere or j == len(segments) - 1:
                    self.skips[j] = [j + 1]
        self.literals = {m for moves in self.moves.values() for m, _ in moves if m is not _ANY}

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        out, todo = set(states), list(states)
        while todo:
            for nxt in self.skips.get(todo.pop(), ()):
                if nxt not in out:
                    out.add(nxt)
                    todo.append(nxt)
        return frozenset(out)

    def step(self, states: frozenset[int], symbol: str | None) -> frozenset[int]:
        """`symbol` None stands for a segment only wildcards take (one holding ':verb')."""
        nxt = {to for s in states for match, to in self.moves.get(s, ()) if match is _ANY or match == symbol}
        return self.closure(frozenset(nxt))


def example_overlap(a: PathTemplate, b: PathTemplate, *, empty_anywhere: bool = True) -> str | None:
    """A request path both templates match (as grpc-gateway matches them by default:
    `empty_anywhere`), or None when there is none. Templates with different verbs never
    overlap; a verb template overlaps one without where the latter's last segment is a
    wildcard that takes ``<segment>:<verb>``."""
    if a.verb is not None and b.verb is not None and normalize_segment(a.verb) != normalize_segment(b.verb):
        return None
    if b.verb is not None and a.verb is None:
        a, b = b, a
    ta, tb = _Automaton(a, empty_anywhere), _Automaton(b, empty_anywhere)
    literals = sorted(ta.literals | tb.literals)
    other = next(c for c in ("x", "y", "z", "x1", "x2", "x3") if c not in literals)
    alphabet = [other, *literals]  # a segment neither names first: examples read like requests
    verb_on_b = a.verb is not None and b.verb is None  # b sees the last segment with ':verb' on it
    start = (ta.closure(frozenset({0})), tb.closure(frozenset({0})))
    if not verb_on_b and ta.final in start[0] and tb.final in start[1]:
        return "/" + (f":{a.verb}" if a.verb else "")  # both match the root
    parents: dict[tuple[frozenset[int], frozenset[int]], tuple | None] = {start: None}
    queue = deque([start])
    while queue:
        pair = queue.popleft()
        sa, sb = pair
        for symbol in alphabet:
            na = ta.step(sa, symbol)
            if not na:
                continue
            nb = tb.step(sb, symbol)
            # the last segment: b takes it with ':verb' on it when only a has the verb
            last_b = tb.step(sb, None) if verb_on_b else nb
            if ta.final in na and tb.final in last_b:
                return _render(parents, pair, symbol, a.verb)
            if nb and (na, nb) not in parents:
                parents[(na, nb)] = (pair, symbol)
                queue.append((na, nb))
    return None


def _render(parents: dict, pair: tuple, last: str, verb: str | None) -> str:
    symbols = [last]
    while parents[pair] is not None:
        pair, symbol = parents[pair]
        symbols.append(symbol)
    return "/" + "/".join(reversed(symbols)) + (f":{verb}" if verb else "")
