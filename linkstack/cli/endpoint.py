"""``linkstack endpoint``: talk to the onboard model through the payload codec.

``linkstack endpoint ask "PROMPT"`` runs the whole payload path in one process: the ground
client encodes the Prompt into Space Packets, the endpoint reassembles and decodes them, the
model answers, the endpoint encodes the Result into packets, and the client decodes and matches
them. It prints the answer with token counts, timings and the packets on each leg.

With ``--stream`` the endpoint cuts the answer into PartialResults as the model generates
(every ``--stream-tokens`` tokens, 1 by default, or ``--stream-ms``), the client puts them
together, and the words are printed as they come; the Result closes the line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from linkstack.cli.options import StreamMsOpt, StreamTokensOpt, fail
from linkstack.cli.options import group as command_group
from linkstack.errors import ConfigError, LinkstackError
from linkstack.payload.backend import FLIGHT_PROFILES, LlamaCppBackend, scaled_inference_s
from linkstack.payload.client import PartialReceived, PromptClient, ResultReceived
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import GenerationParams, Status
from linkstack.payload.serving import generate


def register(app: typer.Typer) -> None:
    """Add the ``endpoint`` command group to ``app``."""
    group = command_group("The onboard model endpoint (AI payload).")

    @group.command("ask")
    def ask(
        prompt: Annotated[str, typer.Argument(help="The question or text to complete.")],
        model: Annotated[Path | None, typer.Option(
            "--model", help="A GGUF file (default: Gemma 3 270M Q4_K_M from PyPI).")] = None,
        max_tokens: Annotated[int, typer.Option(
            "--max-tokens", min=1, max=65535, help="Most tokens the model may generate.")] = 64,
        temperature: Annotated[float, typer.Option(
            "--temperature", min=0.0, max=65.535,
            help="Sampling temperature; 0 is greedy (the same answer every time).")] = 0.0,
        seed: Annotated[int, typer.Option(
            "--seed", min=0, max=2**32 - 1, help="The model's sampling seed.")] = 0,
        prompt_format: Annotated[str | None, typer.Option(
            "--format", help="qa-short, qa-few-shot, gemma-turn, raw, or chat-template (the "
            "GGUF's own; default: its chat template if it has one, else qa-short).")] = None,
        threads: Annotated[int | None, typer.Option(
            "--threads", min=1, help="CPU threads for llama.cpp (default: its own choice)."),
        ] = None,
        profile: Annotated[str, typer.Option(
            "--profile", help=f"Flight profile: {', '.join(FLIGHT_PROFILES)}.")] = "this-machine",
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        stream: Annotated[bool, typer.Option(
            "--stream", help="Print the words as they are generated (partial results).")
        ] = False,
        stream_tokens: StreamTokensOpt = 1,
        stream_ms: StreamMsOpt = 0.0,
    ) -> None:
        """Ask the onboard model one question through the payload codec."""
        console = Console()
        if stream and stream_tokens == 0 and stream_ms == 0:
            Console(stderr=True).print("[red]error:[/red] --stream-tokens: 0 with --stream-ms "
                                       "0 streams nothing; give one of them")
            raise typer.Exit(2)
        printed: list[str] = []

        def show(text: str) -> None:
            printed.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()

        try:
            report = run_ask(prompt, model=model, max_tokens=max_tokens,
                             temperature=temperature, seed=seed, prompt_format=prompt_format,
                             threads=threads, profile=profile, stream=stream,
                             stream_tokens=stream_tokens, stream_interval_s=stream_ms / 1000,
                             on_text=show if stream and not as_json else None)
        except LinkstackError as exc:
            if printed:
                sys.stdout.write("\n")
            if isinstance(exc, ConfigError):  # the backend's settings are these options
                option = {"model_path": "--model", "prompt_format": "--format",
                          "profile": "--profile"}.get(exc.key, exc.key)
                exc = ConfigError(exc.reason, key=option)
            raise fail(exc) from None
        if printed:  # the rest of the answer, from the Result, closes the line
            shown = "".join(printed)
            answer = report["answer"]
            sys.stdout.write((answer[len(shown):] if answer.startswith(shown) else "") + "\n")
            sys.stdout.flush()
        if as_json:
            typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            _print(console, report, header=not printed)
        if report["status"] != Status.OK.name.lower():
            raise typer.Exit(1)

    app.add_typer(group, name="endpoint")


def run_ask(
    prompt: str,
    *,
    model: Path | None = None,
    max_tokens: int = 64,
    temperature: float = 0.0,
    seed: int = 0,
    prompt_format: str | None = None,
    threads: int | None = None,
    profile: str = "this-machine",
    backend: Any = None,
    stream: bool = False,
    stream_tokens: int = 1,
    stream_interval_s: float = 0.0,
    on_text: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Run one prompt through client → packets → endpoint → model → packets → client.

    Returns a JSON-able report. ``backend`` (any ModelBackend) replaces the llama.cpp one.
    With ``stream`` the endpoint sends partial results while the model generates; each is
    decoded by the client at once and the text it adds is given to ``on_text``.
    """
    load_s = 0.0
    if backend is None:
        backend = LlamaCppBackend(model, prompt_format=prompt_format, n_threads=threads)
        load_s = backend.load_s
    config = EndpointConfig(profile=profile, stream_tokens=stream_tokens if stream else 0,
                            stream_interval_s=stream_interval_s if stream else 0.0)
    endpoint = ModelEndpoint(backend, config)
    client = PromptClient()
    params = GenerationParams(max_tokens, temperature, seed)
    t0 = time.monotonic()
    rid, up = client.ask(prompt, t0, params=params)
    replies: list[bytes] = []
    for pkt in up:
        for event in endpoint.receive_packet(pkt, time.monotonic()):
            if isinstance(event, ResultSent):
                replies.extend(event.packets)
    generation = None
    partials = 0
    streamed: list[bytes] = []  # partial-result packets, given to the client as they came
    job = endpoint.next_job(time.monotonic())

    def on_token(text: str, tokens: int) -> None:  # (same thread: generation is inline)
        nonlocal partials
        assert job is not None
        for pkt in endpoint.progress(job, text, tokens, time.monotonic()):
            streamed.append(pkt)
            for event in client.receive_packet(pkt, time.monotonic()):
                if isinstance(event, PartialReceived) and event.request_id == rid:
                    partials += 1
                    if event.new_text and on_text is not None:
                        on_text(event.new_text)

    if job is not None:
        try:
            generation = generate(backend, job.prompt.text, job.prompt.params,
                                  on_token if stream else None)
        except Exception as exc:
            replies.extend(endpoint.fail(job, time.monotonic(), Status.BACKEND_ERROR, str(exc)))
        else:
            replies.extend(endpoint.complete(job, generation, time.monotonic()))
    answer = None
    for pkt in replies:
        for event in client.receive_packet(pkt, time.monotonic()):
            if isinstance(event, ResultReceived) and event.request_id == rid:
                answer = event
    if answer is None:  # cannot happen with an in-process endpoint; be explicit anyway
        raise LinkstackError("no result came back for the request")
    r = answer.result
    measured = generation.inference_s if generation is not None else 0.0
    return {
        "request_id": rid,
        "status": r.status.name.lower(),
        "answer": r.text,
        "model_id": r.model_id,
        "prompt_format": getattr(getattr(backend, "prompt_format", None), "name", None),
        "finish_reason": r.finish_reason.name.lower(),
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "load_s": load_s,
        "inference_s_measured": measured,
        "tokens_per_s": generation.tokens_per_s if generation is not None else 0.0,
        "profile": profile,
        "inference_s_on_profile": scaled_inference_s(measured, profile),
        "queue_time_s": r.queue_time_us / 1e6,
        "round_trip_s": answer.round_trip_s,
        "ttft_s": answer.ttft_s,
        "partial_results": partials,
        "uplink_packets": len(up),
        "uplink_octets": sum(len(p) for p in up),
        "downlink_packets": len(replies) + len(streamed),
        "downlink_octets": sum(len(p) for p in replies + streamed),
    }


def _print(console: Console, report: dict[str, Any], header: bool = True) -> None:
    style = "green" if report["status"] == "ok" else "red"
    if header:
        console.print(f"[bold {style}]{report['status']}[/]  {report['answer']}")
    else:  # the answer was printed as it came
        console.print(f"[bold {style}]{report['status']}[/]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    rows = [
        ("model", f"{report['model_id']} (format {report['prompt_format']})"),
        ("tokens", f"{report['prompt_tokens']} prompt, {report['completion_tokens']} completion "
                   f"({report['finish_reason']})"),
        ("model load", f"{report['load_s']:.3f} s"),
        ("inference", f"{report['inference_s_measured']:.3f} s here, "
                      f"{report['tokens_per_s']:.1f} tokens/s"),
        (f"on {report['profile']}", f"{report['inference_s_on_profile']:.3f} s"),
        ("round trip", f"{report['round_trip_s']:.3f} s (in process, no link)"),
        ("first words", f"{report['ttft_s']:.3f} s ({report['partial_results']} partial "
                        "result(s))"),
        ("uplink", f"{report['uplink_packets']} packet(s), {report['uplink_octets']} octets"),
        ("downlink", f"{report['downlink_packets']} packet(s), "
                     f"{report['downlink_octets']} octets"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
