"""The question set and its scoring rule (bench/accuracy.py), and the shipped model's accuracy.

The unit tests need no model. The ``model``-marked tests run the real Gemma 3 270M with the
default prompt format on a fixed subset of the question set.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from linkstack.errors import ConfigError
from linkstack.payload.backend import (
    PROMPT_FORMATS,
    QA_SHORT,
    Generation,
    LlamaCppBackend,
    ModelNotInstalled,
    RecordedBackend,
)
from linkstack.payload.messages import GenerationParams

ROOT = Path(__file__).resolve().parents[1]


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "bench" / "accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


acc = _load_bench()
Q = acc.Question


# -- the question set ---------------------------------------------------------------------------


def test_project_question_set_loads_and_is_large_enough() -> None:
    questions = acc.load_questions()
    assert len(questions) >= 100
    assert len({q.id for q in questions}) == len(questions)
    assert len({q.q.casefold() for q in questions}) == len(questions)
    assert all(q.answers for q in questions)
    by_id = {q.id: q for q in questions}
    assert by_id["largest-planet"].answers == ("Jupiter",)
    assert "Earth" in by_id["largest-planet"].reject


def test_no_accepted_answer_is_rejected_or_in_its_question() -> None:
    for q in acc.load_questions():
        for a in q.answers:
            assert not acc._contains(acc.tokens(q.q), acc.tokens(a)), q.id
            assert acc.is_correct(a, q), (q.id, a)  # each alias alone is a right answer
        for r in q.reject:
            assert not acc.is_correct(r, q), (q.id, r)


def test_the_shipped_default_is_the_measured_twelve_example_format() -> None:
    built = acc.few_shot("x", acc._SET_A + acc._SET_B + acc._SET_C, short=True)
    assert (built.template, built.stop) == (QA_SHORT.template, QA_SHORT.stop)
    assert acc._shipped_default_name() == "qa-short"
    assert QA_SHORT.render(" Why? ").endswith(
        "Q: What is the main language of Argentina?\nA: Spanish\n\nQ: Why?\nA:"
    )


def test_few_shot_examples_are_not_in_the_question_set() -> None:
    asked = {" ".join(acc.tokens(q.q)) for q in acc.load_questions()}
    examples = [e[0] for s in (acc._SET_A, acc._SET_B, acc._SET_C) for e in s]
    for fmt in (*PROMPT_FORMATS.values(), *(c.fmt for c in acc.candidates())):
        for line in fmt.template.splitlines():
            if line.startswith(("Q: ", "Question: ")) and "{prompt}" not in line:
                examples.append(line.split(" ", 1)[1])
    assert len(examples) > 12
    for e in examples:
        assert " ".join(acc.tokens(e)) not in asked, e


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1", "no [[question]] tables"),
        ("[[question]]\nid = 'a'\nq = 'Q?'\n", "answers must be a non-empty list"),
        ("[[question]]\nid = 'a'\nq = 'Q?'\nanswers = []\n", "answers must be a non-empty list"),
        ("[[question]]\nid = 'a'\nq = 'Q?'\nanswers = ['x']\nreject = 'y'\n", "reject must be"),
        ("[[question]]\nid = 'A b'\nq = 'Q?'\nanswers = ['x']\n", "id must be a kebab-case"),
        ("[[question]]\nid = 'a'\nq = ''\nanswers = ['x']\n", "q must be a non-empty"),
        ("[[question]]\nid = 'a'\nq = 'Q?'\nanswers = ['x']\nhint = 1\n", "unknown key 'hint'"),
        ("[[question]]\nid = 'a'\nq = 'Q?'\nanswers = ['x']\n" * 2, "id used twice"),
        (
            "[[question]]\nid = 'a'\nq = 'Is Paris big?'\nanswers = ['paris']\n",
            "accepted answer 'paris' occurs in the question",
        ),
        ("[[question]\n", "not TOML"),
    ],
)
def test_bad_question_files_name_the_entry_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        acc.parse_questions(text, "t.toml")


def test_missing_question_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read question set"):
        acc.load_questions(tmp_path / "none.toml")


# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Paris.", ["paris"]),
        ("  São  PAULO!", ["sao", "paulo"]),
        ("Brasília", ["brasilia"]),
        ("twenty-four hours", ["24", "hours"]),
        ("two hundred and six bones", ["206", "bones"]),
        ("one hundred", ["100"]),
        ("three thousand five hundred", ["3500"]),
        ("zero degrees", ["0", "degrees"]),
        ("eleven players and six", ["11", "players", "and", "6"]),
        ("one two", ["1", "2"]),  # a unit after a unit starts a new number
        ("sixty nine", ["69"]),
        ("nineteen sixty-nine", ["19", "69"]),  # years spoken in pairs are not read as one number
        ("1,000 km and 3.14.", ["1000", "km", "and", "3.14"]),
        ("12,34", ["12", "34"]),  # not a thousands separator
        ("It isn't Jupiter", ["it", "is", "not", "jupiter"]),
        ("It isn\u2019t", ["it", "is", "not"]),
        ("H2O, CO2", ["h2o", "co2"]),
        ("snake_case", ["snake", "case"]),
    ],
)
def test_tokens(text: str, words: list[str]) -> None:
    assert acc.tokens(text) == words


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Jupiter. Earth is smaller.", "Jupiter."),
        ("It is 3.14 exactly. More.", "It is 3.14 exactly."),
        ("Paris\nQ: next", "Paris"),
        ("Is it? Yes", "Is it?"),
        ("  Rome  ", "Rome"),
        ("It was J.K. Rowling. Then more.", "It was J.K. Rowling."),  # initials
        ("By J. K. Rowling", "By J. K. Rowling"),
        ("St. Petersburg is not it. Moscow.", "St. Petersburg is not it."),
        ("Dr. Fleming. Yes.", "Dr. Fleming."),
        ("It is 24. Hours", "It is 24."),
    ],
)
def test_first_sentence(text: str, first: str) -> None:
    assert acc.first_sentence(text) == first


# -- scoring ------------------------------------------------------------------------------------

PLANET = Q(
    "largest-planet",
    "What is the largest planet in the solar system?",
    ("Jupiter",),
    ("Earth", "Saturn", "Mars"),
)
LEGS = Q("spider-legs", "How many legs does a spider have?", ("8",))
MONA = Q("mona-lisa", "Who painted the Mona Lisa?", ("Leonardo", "da Vinci"))
GOLD = Q("symbol-gold", "What is the chemical symbol for gold?", ("Au",))
PI = Q("pi", "What is pi rounded to two decimal places?", ("3.14",))


@pytest.mark.parametrize(
    ("question", "answer", "right"),
    [
        (PLANET, "Jupiter", True),
        (PLANET, "jupiter.", True),
        (PLANET, "The largest planet in the solar system is Jupiter.", True),
        (PLANET, "Earth is the largest planet in the solar system.", False),
        (PLANET, "It is not Jupiter.", False),  # negated
        (PLANET, "It isn't Jupiter, it is Saturn.", False),
        (PLANET, "Not Earth but Jupiter.", True),  # the reject is negated
        (PLANET, "Never Jupiter", False),
        (PLANET, "Mars, Earth, Jupiter and Saturn.", False),  # a list is not an answer
        (PLANET, "Jupiter is larger than Earth.", False),  # strict: names a reject
        (PLANET, "A gas giant. It is Jupiter.", False),  # only the first sentence
        (PLANET, "Jupiterian moons", False),  # whole words only
        (PLANET, "", False),
        (LEGS, "A spider has eight legs.", True),  # number words
        (LEGS, "8", True),
        (LEGS, "A spider has 4 legs.", False),
        (LEGS, "A spider has eighty legs.", False),
        (LEGS, "A spider has 18 legs.", False),
        (LEGS, "The spider has 800 legs.", False),
        (MONA, "Leonardo da Vinci painted it.", True),
        (MONA, "It was painted by da Vinci.", True),  # a multi-word alias
        (MONA, "It was painted by Vinci.", False),
        (
            Q("hp", "Who wrote the Harry Potter books?", ("Rowling",)),
            "Harry Potter was written by J.K. Rowling.",
            True,
        ),
        (GOLD, "The symbol for gold is Au.", True),
        (GOLD, "Aurum", False),
        (PI, "Pi is about 3.14.", True),
        (PI, "Pi is 3.", False),
        (PI, "3.141", False),
    ],
)
def test_is_correct(question: object, answer: str, right: bool) -> None:
    assert acc.is_correct(answer, question) is right


def _recorded(answers: dict[str, str]) -> RecordedBackend:
    return RecordedBackend({q: Generation(a, 10, 3, 0.01) for q, a in answers.items()})


def test_measure_accuracy_counts_right_answers_with_greedy_params() -> None:
    backend = _recorded({PLANET.q: "Earth.", LEGS.q: "Eight.", MONA.q: "Leonardo."})
    seen: list[tuple[str, str, bool]] = []
    k, n = acc.measure_accuracy(
        backend, [PLANET, LEGS, MONA], on_answer=lambda q, a, ok: seen.append((q.id, a, ok))
    )
    assert (k, n) == (2, 3)
    assert seen == [
        ("largest-planet", "Earth.", False),
        ("spider-legs", "Eight.", True),
        ("mona-lisa", "Leonardo.", True),
    ]
    assert {p for _, p in backend.calls} == {GenerationParams(32, 0.0, 0)}


def test_main_rejects_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert acc.main(["--formats", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--formats" in err and "'nope'" in err


# -- the real model -----------------------------------------------------------------------------

# A fixed subset spread over the set's sections (about 10 s on 2 idle cores).
SUBSET = (
    "capital-france",
    "capital-japan",
    "red-planet",
    "mona-lisa",
    "romeo-juliet",
    "days-week",
    "longest-river-africa",
    "harry-potter",
    "opposite-hot",
    "frozen-water",
)
FLOOR = 7
"""Right answers required of the 10 (the default format answered all 10 when this was
written, and 80 of the whole set's 128; a format or model change that loses more than three
of these fails)."""


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    try:
        return LlamaCppBackend()
    except ModelNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.model
def test_default_format_answers_the_largest_planet(backend: LlamaCppBackend) -> None:
    (q,) = [q for q in acc.load_questions() if q.id == "largest-planet"]
    answer = backend.generate(q.q, GenerationParams(32, 0.0, 0)).text
    assert "Jupiter" in answer and acc.is_correct(answer, q), answer


@pytest.mark.model
def test_default_format_accuracy_floor_on_a_subset(backend: LlamaCppBackend) -> None:
    by_id = {q.id: q for q in acc.load_questions()}
    wrong: list[str] = []
    k, n = acc.measure_accuracy(
        backend,
        [by_id[i] for i in SUBSET],
        on_answer=lambda q, a, ok: ok or wrong.append(f"{q.id}: {a}"),
    )
    assert n == len(SUBSET)
    assert k >= FLOOR, wrong
