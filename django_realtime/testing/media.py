"""The fake peer's media (aiortc): the tone it plays, what counts as silence, and the
offer's mDNS candidates it ignores."""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time

from .errors import MissingExtraError
from .state import FakeCall

try:
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError
    from av import AudioFrame
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("aiortc", "The fake Realtime API's WebRTC peer") from exc

__all__ = ["ToneTrack", "is_silent", "strip_mdns_candidates"]

SAMPLE_RATE = 48000
FRAME_SECONDS = 0.020
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)  # 960 samples per 20 ms frame
#: Peak amplitude (of 32767) above which a decoded frame counts as "not silent".
SILENCE_PEAK = 100


def _tone_frames(freq: int, amplitude: int = 8000) -> list[bytes]:
    """One second of a sine tone (an integer number of cycles), cut into 20 ms frames."""
    pcm = array.array(
        "h",
        (
            int(amplitude * math.sin(2 * math.pi * freq * i / SAMPLE_RATE))
            for i in range(SAMPLE_RATE)
        ),
    )
    raw = pcm.tobytes()
    step = FRAME_SAMPLES * 2
    return [raw[i : i + step] for i in range(0, len(raw), step)]


class ToneTrack(MediaStreamTrack):
    """Outgoing audio: a paced sine tone, 48 kHz mono s16 in 20 ms frames.

    Paced against the wall clock, because aiortc pulls frames as fast as ``recv``
    returns them and an unpaced track would flood the browser's jitter buffer.
    """

    kind = "audio"

    def __init__(self, call: FakeCall, freq: int) -> None:
        super().__init__()
        self._call = call
        self._frames = _tone_frames(freq)
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(self._frames[self._call.audio_frames_sent % len(self._frames)])
        frame.pts = self._pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._call.audio_frames_sent += 1
        return frame


def is_silent(frame: AudioFrame) -> bool:
    data = bytes(frame.planes[0])
    if frame.format.name != "s16":
        return not any(data)
    samples = array.array("h", data[: len(data) - len(data) % 2])
    return not samples or (max(samples) <= SILENCE_PEAK and min(samples) >= -SILENCE_PEAK)


def strip_mdns_candidates(sdp: str) -> str:
    """Drop ``a=candidate`` lines whose address is an mDNS ``.local`` name.

    aioice would resolve them by multicast on the LAN; the browser's real loopback
    address is learned anyway from its connectivity checks (peer-reflexive).
    """
    kept = []
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) > 4 and fields[4].endswith(".local"):
                continue
        kept.append(line)
    return "".join(kept)
