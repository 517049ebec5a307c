"""A GGUF's own chat template (metadata ``tokenizer.chat_template``) is its prompt format.

Selection and rendering are tested on the real Gemma GGUF's metadata (read from the file, no
model loaded) and on synthetic metadata; the ``model``-marked tests load a copy of the real
GGUF with a chat template added (tests/gguf_meta.py) and check that llama.cpp sees it and the
backend uses it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from gguf_meta import copy_with_string, read_metadata
from typer.testing import CliRunner

from linkstack.errors import ConfigError
from linkstack.payload.backend import (
    CHAT_TEMPLATE,
    GEMMA_TURN,
    PROMPT_FORMATS,
    QA_FEW_SHOT,
    QA_SHORT,
    ChatTemplateFormat,
    LlamaCppBackend,
    ModelNotInstalled,
    chat_template_format,
    default_prompt_format,
    gemma_gguf_path,
    resolve_prompt_format,
)
from linkstack.payload.messages import GenerationParams

# Written for these tests: Gemma-style turns (a "model" turn for the assistant) and ChatML.
TURNS = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n"
    "{% endif %}"
)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TOKENS = {1: "<eos>", 2: "<bos>", 7: "<|im_end|>", 8: "<|endoftext|>"}


def _meta(template: str | None, bos: int | None = 2, eos: int | None = 1) -> dict[str, str]:
    meta = {"general.architecture": "gemma3"}
    if template is not None:
        meta["tokenizer.chat_template"] = template
    if bos is not None:
        meta["tokenizer.ggml.bos_token_id"] = str(bos)
    if eos is not None:
        meta["tokenizer.ggml.eos_token_id"] = str(eos)
    return meta


def test_the_shipped_gguf_has_no_chat_template_so_the_few_shot_default() -> None:
    meta = read_metadata(gemma_gguf_path())
    assert meta["general.architecture"] == "gemma3"
    assert meta["general.name"] == "Gemma 3 270m"
    assert "tokenizer.chat_template" not in meta
    strings = {k: str(v) for k, v in meta.items() if not isinstance(v, list)}
    assert chat_template_format(strings, TOKENS.__getitem__) is None
    assert default_prompt_format(strings, TOKENS.__getitem__) is QA_SHORT


def test_a_chat_template_is_the_default_and_renders_one_user_turn() -> None:
    fmt = default_prompt_format(_meta(TURNS), TOKENS.__getitem__)
    assert isinstance(fmt, ChatTemplateFormat)
    assert (fmt.name, fmt.bos_token, fmt.eos_token, fmt.stop) == (
        CHAT_TEMPLATE,
        "<bos>",
        "<eos>",
        ("<eos>",),
    )
    # the template's <bos> is dropped (the tokenizer adds BOS); the rest is Gemma's turn format
    assert (
        fmt.render("  Why is the sky blue? ")
        == GEMMA_TURN.render("Why is the sky blue?")
        == "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_chatml_template_with_its_own_eos() -> None:
    fmt = chat_template_format(_meta(CHATML, bos=None, eos=7), TOKENS.__getitem__)
    assert fmt is not None and fmt.bos_token == "" and fmt.stop == ("<|im_end|>",)
    assert fmt.render("Hi") == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_a_template_that_does_not_start_with_bos_keeps_its_text() -> None:
    fmt = chat_template_format(_meta("[{{ messages[0]['content'] }}]<bos>"), TOKENS.__getitem__)
    assert fmt is not None and fmt.render("x") == "[x]<bos>"


def test_without_token_texts_the_template_gets_empty_bos_and_eos() -> None:
    fmt = chat_template_format(_meta(TURNS))
    assert fmt is not None and (fmt.bos_token, fmt.eos_token, fmt.stop) == ("", "", ())
    assert fmt.render("Hi").startswith("<start_of_turn>user\nHi")
    fmt = chat_template_format(_meta(TURNS, bos=None, eos=None), TOKENS.__getitem__)
    assert fmt is not None and fmt.bos_token == ""


@pytest.mark.parametrize("template", ["", "   \n"])
def test_an_empty_template_is_no_template(template: str) -> None:
    assert chat_template_format(_meta(template), TOKENS.__getitem__) is None
    assert default_prompt_format(_meta(template)) is QA_SHORT


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{% for m in messages %}{{ m.content }", "unexpected"),
        ("{{ raise_exception('Only system turns') }}", "Only system turns"),
        ("{{ messages[5]['content'] }}", ""),
    ],
)
def test_a_template_that_does_not_render_fails_at_load_naming_the_key(
    template: str, why: str
) -> None:
    with pytest.raises(ConfigError, match=rf"tokenizer\.chat_template.*{why}") as info:
        chat_template_format(_meta(template), TOKENS.__getitem__)
    assert info.value.key == "tokenizer.chat_template"


def test_resolve_by_name() -> None:
    meta = _meta(TURNS)
    for name, fmt in PROMPT_FORMATS.items():
        assert resolve_prompt_format(name, meta) is fmt  # a named format beats the template
    assert resolve_prompt_format(GEMMA_TURN, {}) is GEMMA_TURN
    chosen = resolve_prompt_format(CHAT_TEMPLATE, meta, TOKENS.__getitem__)
    assert isinstance(chosen, ChatTemplateFormat) and chosen.template == TURNS
    with pytest.raises(ConfigError, match=r"the GGUF has no tokenizer\.chat_template") as info:
        resolve_prompt_format(CHAT_TEMPLATE, _meta(None))
    assert info.value.key == "prompt_format"
    with pytest.raises(ConfigError, match=r"unknown prompt format 'chat'.*chat-template"):
        resolve_prompt_format("chat", meta)


def test_copy_with_string_keeps_the_tensor_data(tmp_path: Path) -> None:
    # a minimal GGUF v3: 2 keys, 1 tensor of 4 f32 values at offset 0, alignment 32
    def s(x: str) -> bytes:
        return struct.pack("<Q", len(x)) + x.encode()

    head = (
        b"GGUF"
        + struct.pack("<IQQ", 3, 1, 2)
        + s("general.name")
        + struct.pack("<I", 8)
        + s("t")
        + s("a.list")
        + struct.pack("<IIQ", 9, 8, 2)
        + s("x")
        + s("yz")
        + s("w")
        + struct.pack("<IQIQ", 1, 4, 0, 0)
    )
    data = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    src, dst = tmp_path / "a.gguf", tmp_path / "b.gguf"
    src.write_bytes(head + b"\0" * (-len(head) % 32) + data)
    copy_with_string(src, dst, "tokenizer.chat_template", "{{ x }}\u00e9")
    assert read_metadata(dst) == {
        "general.name": "t",
        "a.list": ["x", "yz"],
        "tokenizer.chat_template": "{{ x }}\u00e9",
    }
    out = dst.read_bytes()
    assert len(out) % 32 == 16 and out.endswith(data)
    assert out[-len(data) - 1] == 0 and (len(out) - len(data)) % 32 == 0
    with pytest.raises(ValueError, match="already"):
        copy_with_string(dst, tmp_path / "c.gguf", "general.name", "u")


# -- the real model with a template added -------------------------------------------------------


@pytest.fixture(scope="module")
def templated_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        src = gemma_gguf_path()
    except ModelNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    dst = tmp_path_factory.mktemp("gguf") / "gemma-with-template.gguf"
    copy_with_string(src, dst, "tokenizer.chat_template", TURNS)
    return dst


@pytest.mark.model
def test_a_gguf_with_a_chat_template_is_prompted_with_it(templated_gguf: Path) -> None:
    backend = LlamaCppBackend(templated_gguf)
    assert backend.metadata["tokenizer.chat_template"] == TURNS  # llama.cpp read the key
    fmt = backend.prompt_format
    assert isinstance(fmt, ChatTemplateFormat)
    assert (fmt.bos_token, fmt.eos_token) == ("<bos>", "<eos>")  # the model's token texts
    q = "What is the capital of France?"
    # one BOS, then the turn tokens as special tokens: the same count as Gemma's turn format
    assert backend.count_tokens(q) == len(backend._tokens(GEMMA_TURN.render(q)))
    assert backend._tokens(fmt.render(q))[:3] == [2, 105, backend._tokens("user")[1]]
    g = backend.generate(q, GenerationParams(max_tokens=24))
    assert "<end_of_turn>" not in g.text and "<start_of_turn>" not in g.text
    # --format still picks a named format for such a GGUF
    assert LlamaCppBackend(templated_gguf, prompt_format="qa-few-shot").prompt_format is QA_FEW_SHOT


@pytest.mark.model
def test_cli_format_chat_template_on_the_shipped_gguf_is_one_line_exit_2() -> None:
    import typer

    from linkstack.cli.endpoint import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["endpoint", "ask", "Hi?", "--format", "chat-template"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    out = result.output.strip()
    assert "tokenizer.chat_template" in out and len(out.splitlines()) == 1, out
    assert "Traceback" not in out
    json.dumps(out)  # plain text
