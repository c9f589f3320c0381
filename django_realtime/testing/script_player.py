"""Plays one step of a scripted call (:mod:`.script`) as the API's server events."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .state import FakeCall
from .wire import new_id

if TYPE_CHECKING:
    from .sideband import FakeSidebands

STEPS = (
    "turn",
    "function_call",
    "answered_function_call",
    "tamper",
    "silence",
    "drop_sideband",
    "wait_sideband",
    "hangup",
    "expire",
    "event",
)


def play_step(hub: FakeSidebands, call: FakeCall, kind: str, args: Any) -> None:
    """Send the server events of one step (or act on the call)."""
    if kind == "turn":
        _turn(hub, call, **args)
    elif kind == "function_call":
        _function_call(hub, call, **args)
    elif kind == "answered_function_call":
        _answered_function_call(hub, call, **args)
    elif kind == "tamper":
        update = {"type": call.session_type, **args}
        call.record_client_event({"type": "session.update", "session": update})
        hub.update_session(call, update)
    elif kind == "silence":
        time.sleep(float(args))
    elif kind == "drop_sideband":
        hub.drop(call.id, int(args.get("code", 1001)), str(args.get("reason", "")))
    elif kind == "wait_sideband":
        hub.wait_attached(call.id, int(args.get("count", 1)), float(args.get("timeout", 5.0)))
    elif kind == "hangup":
        hub.end_call(call.id, "closed")
    elif kind == "expire":
        hub.expire(call.id)
    elif kind == "event":
        hub.emit(call, dict(args))
    else:
        raise ValueError(f"unknown script step {kind!r}")


def _turn(
    hub: FakeSidebands,
    call: FakeCall,
    *,
    user: str | None,
    assistant: str | None,
    usage: dict[str, Any] | None,
    transcription_usage: dict[str, Any] | None,
    speech: bool = True,
) -> None:
    if user is not None:
        item_id = new_id("item")
        if speech:
            hub.emit(
                call,
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": 0,
                    "item_id": item_id,
                },
            )
            hub.emit(
                call,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": 1000,
                    "item_id": item_id,
                },
            )
        completed: dict[str, Any] = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": user,
        }
        if transcription_usage is not None:
            completed["usage"] = transcription_usage
        hub.emit(call, completed)
    if assistant is None and usage is None:
        return
    response_id, item_id = new_id("resp"), new_id("item")
    hub.emit(
        call,
        {
            "type": "response.created",
            "response": {"id": response_id, "object": "realtime.response", "status": "in_progress"},
        },
    )
    output: list[dict[str, Any]] = []
    if assistant is not None:
        where = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        hub.emit(
            call,
            {"type": "response.output_audio_transcript.done", **where, "transcript": assistant},
        )
        output.append(
            {
                "id": item_id,
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_audio", "transcript": assistant}],
            }
        )
    hub.emit(call, {"type": "response.done", "response": response_body(response_id, output, usage)})


def _function_call(
    hub: FakeSidebands,
    call: FakeCall,
    *,
    name: str,
    arguments: dict[str, Any] | str,
    call_id: str | None,
    usage: dict[str, Any] | None = None,
) -> None:
    response_id, item_id = new_id("resp"), new_id("item")
    call_id = call_id or new_id("call")
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    hub.emit(
        call,
        {
            "type": "response.created",
            "response": {"id": response_id, "object": "realtime.response", "status": "in_progress"},
        },
    )
    hub.emit(
        call,
        {
            "type": "response.function_call_arguments.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": encoded,
        },
    )
    item = {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": encoded,
    }
    hub.emit(call, {"type": "response.done", "response": response_body(response_id, [item], usage)})


def _answered_function_call(
    hub: FakeSidebands,
    call: FakeCall,
    *,
    answer: str,
    timeout: float = 10.0,
    **function_call: Any,
) -> None:
    # Armed before the call is made: the answer can never miss a quick response.create.
    spoken = hub.answer_next_response(call.id, answer)
    _function_call(hub, call, **function_call)
    if not spoken.wait(timeout):
        hub.disarm(call.id, spoken)
        raise TimeoutError(f"{call.id}: no function_call_output + response.create came")


def speak_answer(hub: FakeSidebands, call: FakeCall, text: str) -> None:
    """A model response (``response.created`` .. ``response.done``) that says ``text``."""
    _turn(hub, call, user=None, assistant=text, usage=None, transcription_usage=None)


def response_body(
    response_id: str, output: list[Any], usage: dict[str, Any] | None
) -> dict[str, Any]:
    """A completed ``response`` object (zero usage unless given)."""
    from .script import usage as zero_usage

    return {
        "id": response_id,
        "object": "realtime.response",
        "status": "completed",
        "output": output,
        "usage": usage if usage is not None else zero_usage(),
    }
