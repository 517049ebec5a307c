"""``linkstack endpoint``: talk to the onboard model through the payload codec.

``linkstack endpoint ask "PROMPT"`` runs the whole payload path in one process: the ground
client encodes the Prompt into Space Packets, the endpoint reassembles and decodes them, the
model answers, the endpoint encodes the Result into packets, and the client decodes and matches
them. It prints the answer with token counts, timings and the packets on each leg.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from linkstack.errors import LinkstackError
from linkstack.payload.backend import FLIGHT_PROFILES, LlamaCppBackend, scaled_inference_s
from linkstack.payload.client import PromptClient, ResultReceived
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import GenerationParams, Status


def register(app: typer.Typer) -> None:
    """Add the ``endpoint`` command group to ``app``."""
    group = typer.Typer(help="The onboard model endpoint (AI payload).", no_args_is_help=True)

    @group.command("ask")
    def ask(
        prompt: Annotated[str, typer.Argument(help="The question or text to complete.")],
        model: Annotated[Path | None, typer.Option(
            "--model", help="A GGUF file (default: Gemma 3 270M Q4_K_M from PyPI).")] = None,
        max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=65535)] = 64,
        temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=65.535)] = 0.0,
        seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
        prompt_format: Annotated[str | None, typer.Option(
            "--format", help="qa-short, qa-few-shot, gemma-turn, raw, or chat-template (the "
            "GGUF's own; default: its chat template if it has one, else qa-short).")] = None,
        threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
        profile: Annotated[str, typer.Option(
            "--profile", help=f"Flight profile: {', '.join(FLIGHT_PROFILES)}.")] = "this-machine",
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Ask the onboard model one question through the payload codec."""
        console = Console()
        try:
            report = run_ask(prompt, model=model, max_tokens=max_tokens,
                             temperature=temperature, seed=seed, prompt_format=prompt_format,
                             threads=threads, profile=profile)
        except LinkstackError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            _print(console, report)
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
) -> dict[str, Any]:
    """Run one prompt through client → packets → endpoint → model → packets → client.

    Returns a JSON-able report. ``backend`` (any ModelBackend) replaces the llama.cpp one.
    """
    load_s = 0.0
    if backend is None:
        backend = LlamaCppBackend(model, prompt_format=prompt_format, n_threads=threads)
        load_s = backend.load_s
    endpoint = ModelEndpoint(backend, EndpointConfig(profile=profile))
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
    job = endpoint.next_job(time.monotonic())
    if job is not None:
        try:
            generation = backend.generate(job.prompt.text, job.prompt.params)
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
        "uplink_packets": len(up),
        "uplink_octets": sum(len(p) for p in up),
        "downlink_packets": len(replies),
        "downlink_octets": sum(len(p) for p in replies),
    }


def _print(console: Console, report: dict[str, Any]) -> None:
    style = "green" if report["status"] == "ok" else "red"
    console.print(f"[bold {style}]{report['status']}[/]  {report['answer']}")
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
        ("uplink", f"{report['uplink_packets']} packet(s), {report['uplink_octets']} octets"),
        ("downlink", f"{report['downlink_packets']} packet(s), "
                     f"{report['downlink_octets']} octets"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
