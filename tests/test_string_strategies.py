"""Patterned string fields drawn as `text(alphabet=...)` where that is provably the pattern's
language (codegen.strategies.repeated_characters), and as `from_regex` everywhere else."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocoder.codegen.strategies import field_strategy, repeated_characters

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# characters a class may name, the awkward ones included: regex syntax, quotes, controls, non-ASCII
CHARACTERS = st.sampled_from(list("az09-_.^$[]\\\"' \n\t") + ["\x00", "é", "ß", "€", "\U0001f600"])
QUANTIFIERS = st.sampled_from(["", "+", "*", "?", "{3}", "{0,2}", "{1,32}", "{2,}", "{1,4}?", "+?"])


@st.composite
def simple_patterns(draw: st.DrawFn) -> str:
    """A pattern of the convertible shape: anchors or not, one class or literal, a quantifier."""
    items = draw(st.lists(st.tuples(CHARACTERS, st.none() | CHARACTERS), min_size=1, max_size=4))
    parts = []
    for low, high in items:
        if high is not None and 0 <= ord(high) - ord(low) <= 300:  # MAX_ALPHABET caps the total
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            parts.append(re.escape(low))
    bare = len(parts) == 1 and len(parts[0]) <= 2 and draw(st.booleans())  # one character, no class
    body = parts[0] if bare else f"[{''.join(parts)}]"
    start, end = draw(st.sampled_from([("", ""), ("^", "$"), ("\\A", "\\Z"), ("^", "")]))
    return f"{start}{body}{draw(QUANTIFIERS)}{end}"


@FAST
@given(pattern=simple_patterns(), data=st.data())
def test_converted_patterns_draw_only_strings_that_fullmatch(pattern: str, data: st.DataObject) -> None:
    spec = {"type": "string", "pattern": pattern}
    strategy = field_strategy(spec)
    assert strategy.function == "text", pattern
    value = data.draw(strategy.build())
    assert re.fullmatch(pattern, value), (pattern, value)


@FAST
@given(pattern=simple_patterns(), low=st.integers(0, 5), span=st.none() | st.integers(0, 40), data=st.data())
def test_field_lengths_narrow_the_patterns(
    pattern: str, low: int, span: int | None, data: st.DataObject
) -> None:
    spec = {"type": "string", "pattern": pattern, "min_length": low}
    if span is not None:
        spec["max_length"] = low + span
    strategy = field_strategy(spec)
    if strategy.function == "from_regex":  # the two length ranges do not meet: as before
        return
    value = data.draw(strategy.build())
    assert re.fullmatch(pattern, value), (pattern, value)
    assert low <= len(value) and (span is None or len(value) <= low + span)


@FAST
@given(pattern=simple_patterns())
def test_the_alphabet_and_lengths_are_exactly_the_patterns(pattern: str) -> None:
    """Both directions: every character of the alphabet matches the pattern's item, every probed
    character outside it does not, and the lengths just outside the range do not match."""
    converted = repeated_characters(pattern)
    assert converted is not None, pattern
    alphabet, least, most = converted
    probes = set(alphabet) | {chr(ord(c) + d) for c in alphabet for d in (-1, 1) if 0 <= ord(c) + d < 0xD800}
    probes |= set("aAzZ09-_.\n\x00é€")
    for char in sorted(probes):
        repeated = char * max(least, 1)
        expected = char in alphabet and (most is None or len(repeated) <= most)
        assert bool(re.fullmatch(pattern, repeated)) == expected, (pattern, char)
    assert re.fullmatch(pattern, alphabet[0] * least)
    if least > 0:
        assert not re.fullmatch(pattern, alphabet[0] * (least - 1))
    if most is not None:
        assert re.fullmatch(pattern, alphabet[-1] * most)
        assert not re.fullmatch(pattern, alphabet[-1] * (most + 1))


def test_the_common_pattern_becomes_text_with_its_bounds() -> None:
    strategy = field_strategy({"type": "string", "pattern": "^[a-z0-9-]{1,32}$", "max_length": 20})
    assert strategy.source() == (
        "st.text(alphabet='-0123456789abcdefghijklmnopqrstuvwxyz', min_size=1, max_size=20)"
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)^[a-z]{1,3}$",  # flags change what a class matches
        "(?m)^a$",
        "^[^a]{2}$",  # negation
        "^\\d{3}$",  # categories
        "^\\w+$",
        "^.+$",
        "^[a-z]+[0-9]$",  # several items
        "^(ab)+$",
        "^[a-z]|[0-9]$",
        "^[a-z]{1,3}{2}$",  # not a regex at all
        "^[\\ud800-\\udfff]{1,3}$",  # surrogates: not text hypothesis draws
        "^[\\x00-\\U0010ffff]{1,3}$",  # wider than MAX_ALPHABET
        "^[a-z--x]{1,3}$",  # set operations in a future re and in the runtime's engine
        "^[[a]{1,3}$",
        "^[a-z&&b]{1,3}$",
        "",
    ],
)
def test_other_patterns_stay_regexes(pattern: str) -> None:
    assert repeated_characters(pattern) is None
    strategy = field_strategy({"type": "string", "pattern": pattern})
    assert strategy.function == "from_regex"
    assert strategy.args == (pattern,)


def test_unmeetable_lengths_stay_as_they_were() -> None:
    strategy = field_strategy({"type": "string", "pattern": "^[a-z]{1,3}$", "min_length": 5})
    assert strategy.source() == "st.from_regex('^[a-z]{1,3}$', fullmatch=True).filter(lambda s: 5 <= len(s))"


@pytest.mark.parametrize(
    "pattern",
    [
        "^[\"'\\\\\\n)]{1,3}$",
        "^[a'\\]]+$",
        "^[\\x00\\x7f\\u2028\\u2029]{2}$",
        "^[');import os;os.system(#]{1,2}$",
    ],
)
def test_hostile_classes_render_only_as_literals(pattern: str) -> None:
    """The alphabet reaches the test file as one string literal whatever the class holds."""
    source = field_strategy({"type": "string", "pattern": pattern}).source()
    call = ast.parse(source, mode="eval").body
    assert isinstance(call, ast.Call)
    assert ast.unparse(call.func) == "st.text" and not call.args
    values = {k.arg: k.value for k in call.keywords}
    assert all(isinstance(v, ast.Constant) for v in values.values()), source
    alphabet = values["alphabet"].value  # type: ignore[attr-defined]
    converted = repeated_characters(pattern)
    assert converted is not None and alphabet == converted[0]
    assert all(re.fullmatch(pattern, c * max(converted[1], 1)) for c in alphabet)
