"""Answer quality of the onboard model: accuracy on the project's question set, per prompt format.

The question set is ``tests/data/questions.toml`` (128 short factual questions written for
linkstack, each with its accepted answers). :func:`measure_accuracy` asks a backend every
question and counts the answers :func:`is_correct` accepts.

Scoring rule (unit-tested in ``tests/test_accuracy.py``):

1. Only the answer's first sentence counts: the text up to the first line break or the first
   ``.``, ``!`` or ``?`` followed by a space (``3.14`` is not a sentence end, nor is the dot
   of an initial, ``J. K. Rowling``, or of ``Mr``, ``Dr``, ``St``...). An answer that
   names the right thing only later ("The largest planet is a gas giant. It is Jupiter.") is
   wrong.
2. Both the answer and each accepted alias are normalised: Unicode accents removed, case
   folded, ``n't`` read as ``not``, thousands separators dropped (``1,000`` → ``1000``), every
   other non-alphanumeric character (except a decimal point between digits) made a space, and
   number words read as digits (``twenty-four`` → ``24``, ``two hundred and six`` → ``206``,
   ``zero`` → ``0``).
3. The answer is right when an accepted alias occurs in it as whole words (``Paris`` in
   "It is Paris." but ``Au`` not in "Aurum"), and that occurrence is not negated: ``not``,
   ``no``, ``never``, ``neither`` or ``nor`` in the two words before it makes it not count
   ("It is not Jupiter" is wrong; "Not Earth but Jupiter" is right).
4. ... unless the first sentence also names one of the question's ``reject`` answers (not
   negated): a list of every planet does not say which one is the largest, even when Jupiter
   is in it, and "Jupiter is bigger than Earth" is wrong for that question too (strict: the
   question only asks for one name).

Run: ``python bench/accuracy.py`` prints ``accuracy: <k>/<n>`` for the shipped model's
default format, then a table over every candidate format (few-shot set, answer style, stop
strings, max tokens), all with greedy decoding (temperature 0, seed 0), so the figures
reproduce. Options: ``--formats a,b`` (only those rows), ``--limit N`` (first N questions),
``--model PATH``, ``--threads N``, ``--wrong`` (print each wrong answer).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError
from linkstack.payload.backend import (
    GEMMA_TURN,
    PROMPT_FORMATS,
    QA_FEW_SHOT,
    QA_SHORT,
    RAW,
    LlamaCppBackend,
    ModelBackend,
    ModelNotInstalled,
    PromptFormat,
)
from linkstack.payload.messages import GenerationParams

QUESTIONS_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "questions.toml"

# -- the question set ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    """One question: ``answers`` are the accepted aliases, ``reject`` the answers that make a
    reply wrong even beside an accepted one."""

    id: str
    q: str
    answers: tuple[str, ...]
    reject: tuple[str, ...] = ()


def _strings(entry: dict[str, Any], key: str, where: str, *, required: bool) -> tuple[str, ...]:
    value = entry.get(key, None if required else [])
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v.strip() for v in value)
        or (required and not value)
    ):
        need = "a non-empty list" if required else "a list"
        raise ConfigError(f"{where}: {key} must be {need} of non-empty strings", key=key)
    return tuple(value)


def parse_questions(text: str, source: str = "questions") -> list[Question]:
    """The questions of a TOML text (``[[question]]`` tables with ``id``, ``q``, ``answers``
    and optional ``reject``). Raises :class:`ConfigError` naming the entry and key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not TOML: {exc}", key="question") from None
    entries = doc.get("question")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[question]] tables", key="question")
    out: list[Question] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, 1):
        where = f"{source}: question {i}"
        unknown = set(entry) - {"id", "q", "answers", "reject"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r}", key=sorted(unknown)[0]
            )
        qid, q = entry.get("id"), entry.get("q")
        if not isinstance(qid, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", qid):
            raise ConfigError(f"{where}: id must be a kebab-case string", key="id")
        where = f"{source}: question {qid!r}"
        if qid in seen:
            raise ConfigError(f"{where}: id used twice", key="id")
        seen.add(qid)
        if not isinstance(q, str) or not q.strip():
            raise ConfigError(f"{where}: q must be a non-empty string", key="q")
        answers = _strings(entry, "answers", where, required=True)
        reject = _strings(entry, "reject", where, required=False)
        for a in answers:
            if _contains(tokens(q), tokens(a)):
                raise ConfigError(
                    f"{where}: accepted answer {a!r} occurs in the question", key="answers"
                )
        out.append(Question(qid, q.strip(), answers, reject))
    return out


def load_questions(path: str | Path = QUESTIONS_PATH) -> list[Question]:
    """The question set at ``path`` (default: the project's, ``tests/data/questions.toml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read question set {p}: {exc}", key="questions") from None
    return parse_questions(text, str(p))


# -- normalisation and scoring ------------------------------------------------------------------

_UNIT_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS)}
_TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENS = {w: 10 * i for i, w in enumerate(_TENS_WORDS, 2)}
_SCALES = {"thousand": 1000, "million": 1_000_000}
NEGATIONS = frozenset({"not", "no", "never", "neither", "nor"})
"""Words that negate an answer occurring within the two words after them."""


def _read_number(words: Sequence[str], i: int) -> tuple[int, int]:
    """The number spelled by ``words[i:]`` and the index after it (``words[i]`` is a unit or
    tens word). A unit after a unit, or tens after a unit or tens, starts a new number."""
    total = current = 0
    last = ""
    j = i
    while j < len(words):
        w = words[j]
        if w in _UNITS:
            if last == "unit" or (last == "tens" and _UNITS[w] >= 10):
                break
            current += _UNITS[w]
            last = "unit"
        elif w in _TENS:
            if last in ("unit", "tens"):
                break
            current += _TENS[w]
            last = "tens"
        elif w == "hundred" and last in ("unit", "tens") and current < 100:
            current *= 100
            last = "hundred"
        elif w in _SCALES and last in ("unit", "tens", "hundred"):
            total += current * _SCALES[w]
            current = 0
            last = "scale"
        elif (
            w == "and"
            and last in ("hundred", "scale")
            and j + 1 < len(words)
            and (words[j + 1] in _UNITS or words[j + 1] in _TENS)
        ):
            pass
        else:
            break
        j += 1
    return total + current, j


def tokens(text: str) -> list[str]:
    """The normalised words of ``text`` (rule 2 of the module docstring)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("\u2019", "'").replace("n't", " not")
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    words = re.findall(r"\d+(?:\.\d+)+|[^\W_]+", text)  # a decimal point stays
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in _UNITS or words[i] in _TENS:
            value, i = _read_number(words, i)
            out.append(str(value))
        else:
            out.append(words[i])
            i += 1
    return out


def _contains(words: Sequence[str], alias: Sequence[str], *, negation: bool = False) -> bool:
    """``alias`` occurs in ``words`` as whole words (not negated, when ``negation``)."""
    n = len(alias)
    if n == 0:
        return False
    for i in range(len(words) - n + 1):
        if list(words[i : i + n]) == list(alias):
            if negation and NEGATIONS.intersection(words[max(0, i - 2) : i]):
                continue
            return True
    return False


_NOT_SENTENCE_ENDS = frozenset({"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "vs", "no"})


def first_sentence(text: str) -> str:
    """The text up to the first line break or sentence end (rule 1)."""
    line = text.strip().split("\n", 1)[0]
    for m in re.finditer(r"[.!?](?=\s)", line):
        word = re.search(r"([^\W\d_]*)$", line[: m.start()])
        before = word.group(1).casefold() if word else ""
        if m.group() == "." and (len(before) == 1 or before in _NOT_SENTENCE_ENDS):
            continue  # an initial (J. K. Rowling) or an abbreviation (St. Petersburg)
        return line[: m.end()]
    return line


def is_correct(answer: str, question: Question) -> bool:
    """The scoring rule of the module docstring."""
    words = tokens(first_sentence(answer))
    if any(_contains(words, tokens(r), negation=True) for r in question.reject):
        return False
    return any(_contains(words, tokens(a), negation=True) for a in question.answers)


# -- measuring ----------------------------------------------------------------------------------


def measure_accuracy(
    backend: ModelBackend,
    questions: Sequence[Question] | None = None,
    *,
    params: GenerationParams | None = None,
    on_answer: Callable[[Question, str, bool], None] | None = None,
) -> tuple[int, int]:
    """Ask ``backend`` every question (default: the project's set) with ``params`` (default:
    greedy, seed 0, 32 tokens) and return ``(right, asked)``. ``on_answer`` sees each
    question, answer and verdict."""
    qs = load_questions() if questions is None else questions
    params = params or GenerationParams(max_tokens=32, temperature=0.0, seed=0)
    right = 0
    for q in qs:
        answer = backend.generate(q.q, params).text
        ok = is_correct(answer, q)
        right += ok
        if on_answer is not None:
            on_answer(q, answer, ok)
    return right, len(qs)


# -- the candidates -----------------------------------------------------------------------------

# Few-shot sets: none of their questions is in the question set (tests/test_accuracy.py).
_SET_A = (
    (
        "What is the boiling point of water at sea level?",
        "100 degrees Celsius",
        "Water boils at 100 degrees Celsius at sea level.",
    ),
    ("Who wrote Hamlet?", "William Shakespeare", "Hamlet was written by William Shakespeare."),
)
_SET_B = (
    ("What is the capital of Portugal?", "Lisbon", "The capital of Portugal is Lisbon."),
    ("Who wrote War and Peace?", "Leo Tolstoy", "War and Peace was written by Leo Tolstoy."),
    ("How many wheels does a bicycle have?", "2", "A bicycle has two wheels."),
    ("What is the chemical symbol for silver?", "Ag", "The chemical symbol for silver is Ag."),
    (
        "In which year did the French Revolution begin?",
        "1789",
        "The French Revolution began in 1789.",
    ),
)
_SET_C = (
    (
        "Which planet is the second from the Sun?",
        "Venus",
        "Venus is the second planet from the Sun.",
    ),
    (
        "Who painted the ceiling of the Sistine Chapel?",
        "Michelangelo",
        "Michelangelo painted the ceiling of the Sistine Chapel.",
    ),
    (
        "What is the largest animal that lives on land?",
        "The African elephant",
        "The African elephant is the largest land animal.",
    ),
    ("How many hours are in two days?", "48", "There are 48 hours in two days."),
    (
        "What is the main language of Argentina?",
        "Spanish",
        "The main language of Argentina is Spanish.",
    ),
)

SHORT_INSTRUCTION = "Answer each question with a short, correct answer."
SENTENCE_INSTRUCTION = "Answer each question in one short sentence."
QUIZ_INSTRUCTION = "General knowledge quiz: answer key (every answer checked by the editor)."


def few_shot(
    name: str,
    examples: Sequence[tuple[str, str, str]],
    *,
    short: bool,
    instruction: str | None = None,
    q: str = "Q:",
    a: str = "A:",
) -> PromptFormat:
    """A few-shot format: ``instruction``, then each example as ``Q: ...`` / ``A: ...`` (the
    short answer or the sentence), then the user's question."""
    if instruction is None:
        instruction = SHORT_INSTRUCTION if short else SENTENCE_INSTRUCTION
    parts = [instruction] if instruction else []
    for question, short_answer, sentence in examples:
        parts.append(f"{q} {question}\n{a} {short_answer if short else sentence}")
    parts.append(f"{q} {{prompt}}\n{a}")
    return PromptFormat(name, "\n\n".join(parts), (f"\n{q}", "\n\n") if not short else ("\n",))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One row of the table: a format and the greedy decoding settings it is measured with."""

    name: str
    fmt: PromptFormat
    max_tokens: int = 32
    note: str = ""


def candidates() -> list[Candidate]:
    """Every format tried, the shipped default first."""
    zero_shot_qa = PromptFormat("qa-zero-shot", "Q: {prompt}\nA:", ("\nQ:", "\n\n"))
    return [
        Candidate("default", PROMPT_FORMATS[_shipped_default_name()], 32, "the shipped default"),
        Candidate("qa-few-shot", QA_FEW_SHOT, 32, "set A (2), sentences; the former default"),
        Candidate("qa-few-shot/16", QA_FEW_SHOT, 16, "the same, 16 tokens"),
        Candidate(
            "a-short", few_shot("a-short", _SET_A, short=True), 32, "set A (2), short answers"
        ),
        Candidate(
            "b-short", few_shot("b-short", _SET_B, short=True), 32, "set B (5), short answers"
        ),
        Candidate(
            "b-short/8",
            few_shot("b-short", _SET_B, short=True),
            8,
            "set B (5), short answers, 8 tokens",
        ),
        Candidate(
            "b-sentence", few_shot("b-sentence", _SET_B, short=False), 32, "set B (5), sentences"
        ),
        Candidate(
            "c-short", few_shot("c-short", _SET_C, short=True), 32, "set C (5), short answers"
        ),
        Candidate(
            "c-sentence", few_shot("c-sentence", _SET_C, short=False), 32, "set C (5), sentences"
        ),
        Candidate(
            "bc-short",
            few_shot("bc-short", _SET_B + _SET_C, short=True),
            32,
            "sets B+C (10), short answers",
        ),
        Candidate(
            "b-short-noinst",
            few_shot("b-short-noinst", _SET_B, short=True, instruction=""),
            32,
            "set B (5), short answers, no instruction line",
        ),
        Candidate(
            "b-question-answer",
            few_shot("b-question-answer", _SET_B, short=True, q="Question:", a="Answer:"),
            32,
            "set B (5), short, Question:/Answer: labels",
        ),
        Candidate(
            "bc-sentence",
            few_shot("bc-sentence", _SET_B + _SET_C, short=False),
            32,
            "sets B+C (10), sentences",
        ),
        Candidate("qa-short", QA_SHORT, 32, "sets A+B+C (12), short answers"),
        Candidate(
            "c-short-noinst",
            few_shot("c-short-noinst", _SET_C, short=True, instruction=""),
            32,
            "set C (5), short answers, no instruction line",
        ),
        Candidate(
            "quiz-bc-short",
            few_shot("quiz-bc-short", _SET_B + _SET_C, short=True, instruction=QUIZ_INSTRUCTION),
            32,
            "sets B+C (10), short answers, a quiz-sheet heading",
        ),
        Candidate("qa-zero-shot", zero_shot_qa, 32, "Q:/A: with no examples"),
        Candidate("gemma-turn", GEMMA_TURN, 32, "Gemma's chat turns, zero-shot"),
        Candidate("raw", RAW, 32, "the bare question"),
    ]


def _shipped_default_name() -> str:
    from linkstack.payload.backend import default_prompt_format

    return default_prompt_format({}).name


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", help="comma-separated candidate names (default: all)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--model", type=Path, help="a GGUF file (default: Gemma 3 270M)")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--wrong", action="store_true", help="print every wrong answer")
    args = parser.parse_args(argv)
    rows = candidates()
    if args.formats:
        names = [n.strip() for n in args.formats.split(",") if n.strip()]
        known = {c.name for c in rows}
        for n in names:
            if n not in known:
                print(
                    f"error: --formats: unknown format {n!r} (known: {', '.join(sorted(known))})",
                    file=sys.stderr,
                )
                return 2
        rows = [c for c in rows if c.name in names]
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be >= 1", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    try:
        questions = load_questions()[: args.limit]
        backend = LlamaCppBackend(args.model, n_threads=args.threads)
    except (ConfigError, ModelNotInstalled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    own = backend.prompt_format
    results: list[tuple[Candidate, int, int, float]] = []
    done: dict[tuple[Any, int], tuple[int, int, float]] = {}
    for cand in rows:
        fmt = own if cand.name == "default" else cand.fmt
        backend.prompt_format = fmt

        def show(q: Question, answer: str, ok: bool, name: str = cand.name) -> None:
            if args.wrong and not ok:
                print(f"  [{name}] {q.id}: {answer!r}")

        params = GenerationParams(max_tokens=cand.max_tokens, temperature=0.0, seed=0)
        key = (fmt, cand.max_tokens)
        if key not in done:  # the default is also a named row: measure it once
            t0 = time.perf_counter()
            right, n = measure_accuracy(backend, questions, params=params, on_answer=show)
            done[key] = (right, n, (time.perf_counter() - t0) / n)
        right, n, per_q = done[key]
        results.append((cand, right, n, per_q))
        if cand.name == "default":
            print(
                f"accuracy: {right}/{n}  (format {fmt.name}, greedy, {cand.max_tokens} tokens max)",
                flush=True,
            )
        else:
            print(f"  {cand.name}: {right}/{n}", file=sys.stderr, flush=True)
    backend.prompt_format = own
    print()
    print("| format | prompt | max tokens | right | s/question |")
    print("|---|---|---|---|---|")
    for cand, right, n, per_q in results:
        print(f"| {cand.name} | {cand.note} | {cand.max_tokens} | {right}/{n} | {per_q:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
