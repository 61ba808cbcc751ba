"""WhisperConnector with tiny WAV files made by the stdlib and transcription bodies written from OpenAI's
documented verbose_json shape."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import IteratorStream

from connectors.exceptions import ConnectorAuthError, ConnectorQuotaError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.whisper import WhisperConnector, segment_confidence

KEY = "sk-test-whisper-0123456789abcdef"
API = "https://api.openai.com/v1/audio/transcriptions"


def write_wav(path: Path, tone: int = 440, frames: int = 800) -> Path:
    """A short mono 16-bit WAV; ``tone`` makes each file's bytes distinct."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone * i / 8000))) for i in range(frames)))
    return path


def segment(n: int, start: float, end: float, text: str, **fields: Any) -> dict[str, Any]:
    body = {"id": n, "seek": 0, "start": start, "end": end, "text": text, "tokens": [50364, 440, 1523],
            "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.3, "no_speech_prob": 0.01}
    body.update(fields)
    return body


def verbose(*segments: dict[str, Any]) -> dict[str, Any]:
    return {"task": "transcribe", "language": "english", "duration": max((s["end"] for s in segments), default=0),
            "text": "".join(s["text"] for s in segments), "segments": list(segments)}


MEETING = verbose(
    segment(0, 0.0, 4.0, " Welcome to the quarterly battery review."),
    segment(1, 4.0, 9.5, " Battery recycling costs fell by a third this year."),
    segment(2, 9.5, 12.0, " Questions at the end."),
)
INTERVIEW = verbose(segment(0, 0.0, 6.0, " Our recycling plant opens in March.", avg_logprob=-0.9))


def make(tmp_path: Path, **kwargs: Any) -> WhisperConnector:
    options: dict[str, Any] = {"api_key": KEY, "audio_dir": tmp_path / "audio", "rate_limit": (1000, 1.0),
                               "base_delay": 0.01, "max_delay": 0.05}
    options.update(kwargs)
    return WhisperConnector(**options)


def serve(httpx_mock, by_name: dict[str, dict[str, Any]]) -> None:
    """Answer each upload with the transcript registered for its file name (400 for any other file)."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = request.read()
        for name, payload in by_name.items():
            if f'filename="{name}"'.encode() in body:
                return httpx.Response(200, json=payload)
        return httpx.Response(400, json={"error": {"message": "unexpected file"}})

    httpx_mock.add_callback(respond, url=API, is_reusable=True)


def uploads(httpx_mock) -> list[Any]:
    return [r for r in httpx_mock.get_requests() if r.method == "POST"]


async def test_unconfigured_connector_names_the_env_var_before_any_request(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "a.wav")
    connector = WhisperConnector(audio_dir=tmp_path / "audio")
    assert not connector.is_configured and not connector.HAS_TIME_AXIS
    with pytest.raises(ConnectorAuthError, match="OPENAI_API_KEY"):
        await connector.search("battery")
    assert httpx_mock.get_requests() == []


async def test_env_configures_key_and_folder(httpx_mock, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ARAGORA_WHISPER_AUDIO_DIR", str(tmp_path / "audio"))
    monkeypatch.setenv("ARAGORA_WHISPER_BASE_URL", "http://whisper.local:9000")
    write_wav(tmp_path / "audio" / "a.wav")
    httpx_mock.add_response(url="http://whisper.local:9000/v1/audio/transcriptions", json=MEETING)
    results = await WhisperConnector(rate_limit=(1000, 1.0)).search("recycling")
    assert [e.content for e in results] == ["Battery recycling costs fell by a third this year."]


async def test_fetch_uploads_multipart_and_returns_segments(httpx_mock, tmp_path):
    path = write_wav(tmp_path / "audio" / "meeting.wav")
    httpx_mock.add_response(url=API, json=MEETING)
    evidence = await make(tmp_path, model="whisper-large-v3", language="en").fetch("meeting.wav")
    request = httpx_mock.get_requests()[0]
    body = request.read()
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="response_format"\r\n\r\nverbose_json' in body
    assert b'name="model"\r\n\r\nwhisper-large-v3' in body and b'name="language"\r\n\r\nen' in body
    assert b'filename="meeting.wav"' in body and path.read_bytes() in body
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert evidence.id == f"whisper:{digest[:16]}"
    assert evidence.source_type is SourceType.AUDIO_TRANSCRIPT
    assert evidence.content.startswith("Welcome to the quarterly battery review.")
    assert [s["start"] for s in evidence.metadata["segments"]] == [0.0, 4.0, 9.5]
    assert evidence.metadata["file"] == "meeting.wav" and evidence.metadata["duration"] == 12.0
    assert KEY not in json.dumps(evidence.to_dict())


async def test_search_returns_matching_segments_and_caches_transcripts(httpx_mock, tmp_path):
    meeting = write_wav(tmp_path / "audio" / "meeting.wav", tone=440)
    write_wav(tmp_path / "audio" / "calls" / "interview.mp3", tone=660)
    serve(httpx_mock, {"meeting.wav": MEETING, "interview.mp3": INTERVIEW})
    results = await make(tmp_path).search("battery recycling", limit=10)
    digest = hashlib.sha256(meeting.read_bytes()).hexdigest()
    assert [e.content for e in results] == [  # most query terms first, then by file and position
        "Battery recycling costs fell by a third this year.",
        "Our recycling plant opens in March.",
        "Welcome to the quarterly battery review.",
    ]
    top, _, last = results
    assert top.id == f"whisper:{digest[:16]}:1" and last.id == f"whisper:{digest[:16]}:0"
    assert (top.metadata["file"], top.metadata["start"], top.metadata["end"]) == ("meeting.wav", 4.0, 9.5)
    assert results[1].metadata["file"] == "calls/interview.mp3"
    cache_file = tmp_path / "audio" / ".aragora-transcripts" / f"{digest}.json"
    assert json.loads(cache_file.read_text())["response"] == MEETING


async def test_second_search_does_not_upload_again(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "meeting.wav", tone=440)
    write_wav(tmp_path / "audio" / "interview.wav", tone=660)
    httpx_mock.add_response(url=API, json=MEETING)
    httpx_mock.add_response(url=API, json=INTERVIEW)
    first = await make(tmp_path).search("recycling")
    assert len(uploads(httpx_mock)) == 2
    again = await make(tmp_path).search("recycling")  # a fresh instance: the disk cache answers
    same_instance = await make(tmp_path).search("questions")
    assert len(uploads(httpx_mock)) == 2
    assert [e.id for e in again] == [e.id for e in first] and len(same_instance) == 1


async def test_identical_files_are_uploaded_once(httpx_mock, tmp_path):
    original = write_wav(tmp_path / "audio" / "a.wav")
    (tmp_path / "audio" / "copy.wav").write_bytes(original.read_bytes())
    httpx_mock.add_response(url=API, json=MEETING)
    results = await make(tmp_path).search("")
    assert len(uploads(httpx_mock)) == 1 and len(results) == 3


async def test_limit_is_honoured(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "meeting.wav")
    httpx_mock.add_response(url=API, json=MEETING)
    assert len(await make(tmp_path).search("", limit=2)) == 2


async def test_oversized_local_file_is_refused_before_upload(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "long.wav", frames=4000)
    connector = make(tmp_path, max_file_bytes=1000)
    with pytest.raises(ConnectorValidationError, match="max_file_bytes"):
        await connector.fetch("long.wav")
    assert await connector.search("") == []
    assert httpx_mock.get_requests() == []


async def test_remote_file_over_content_length_is_refused_before_upload(httpx_mock, tmp_path):
    httpx_mock.add_response(url="https://media.example.org/talk.mp3", content=b"x" * 2000)
    with pytest.raises(ConnectorValidationError, match="max_file_bytes"):
        await make(tmp_path, max_file_bytes=1000).fetch("https://media.example.org/talk.mp3")
    assert uploads(httpx_mock) == []


async def test_remote_stream_without_length_is_capped(httpx_mock, tmp_path):
    httpx_mock.add_response(url="https://media.example.org/talk.mp3",
                            stream=IteratorStream([b"x" * 600, b"x" * 600, b"x" * 600]))
    with pytest.raises(ConnectorValidationError, match="max_file_bytes"):
        await make(tmp_path, max_file_bytes=1000).fetch("https://media.example.org/talk.mp3")
    assert uploads(httpx_mock) == []


async def test_remote_file_is_downloaded_without_the_key_and_transcribed(httpx_mock, tmp_path):
    audio = write_wav(tmp_path / "talk.wav").read_bytes()
    url = "https://media.example.org/talks/talk.wav?X-Amz-Signature=abc123secret"
    httpx_mock.add_response(url=url, content=audio, headers={"Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"})
    httpx_mock.add_response(url=API, json=INTERVIEW)
    evidence = await make(tmp_path).fetch(url)
    download, upload = httpx_mock.get_requests()
    assert "Authorization" not in download.headers and upload.headers["Authorization"] == f"Bearer {KEY}"
    assert audio in upload.read()
    assert evidence.url == "https://media.example.org/talks/talk.wav"
    assert evidence.created_at == "2024-05-01T10:00:00Z"
    assert evidence.id == "whisper:" + hashlib.sha256(audio).hexdigest()[:16]


async def test_missing_remote_or_local_file_returns_none(httpx_mock, tmp_path):
    (tmp_path / "audio").mkdir()
    httpx_mock.add_response(url="https://media.example.org/gone.mp3", status_code=404)
    connector = make(tmp_path)
    assert await connector.fetch("https://media.example.org/gone.mp3") is None
    assert await connector.fetch("missing.wav") is None


@pytest.mark.parametrize("target", ["../outside.wav", ".secret.wav", "notes/.hidden/a.wav", "notes.txt"])
async def test_paths_outside_hidden_or_not_audio_are_refused(httpx_mock, tmp_path, target):
    write_wav(tmp_path / "outside.wav")
    write_wav(tmp_path / "audio" / ".secret.wav")
    with pytest.raises(ConnectorValidationError):
        await make(tmp_path).fetch(target)
    assert httpx_mock.get_requests() == []


async def test_search_skips_hidden_files_and_links_out_of_the_folder(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / ".draft.wav", tone=300)
    write_wav(tmp_path / "audio" / ".private" / "a.wav", tone=350)
    os.symlink(write_wav(tmp_path / "elsewhere.wav", tone=500), tmp_path / "audio" / "link.wav")
    write_wav(tmp_path / "audio" / "visible.wav", tone=700)
    serve(httpx_mock, {"visible.wav": MEETING})
    results = await make(tmp_path).search("")
    assert {e.metadata["file"] for e in results} == {"visible.wav"}
    assert len(uploads(httpx_mock)) == 1


async def test_fetch_by_search_id_answers_from_the_cache(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "meeting.wav")
    httpx_mock.add_response(url=API, json=MEETING)
    [hit] = await make(tmp_path).search("questions")
    fresh = make(tmp_path)
    again = await fresh.fetch(hit.id)
    assert again is not None and (again.id, again.content, again.metadata) == (hit.id, hit.content, hit.metadata)
    assert again.created_at == hit.created_at and again.freshness == pytest.approx(hit.freshness)
    whole = await fresh.fetch(hit.id.rsplit(":", 1)[0])
    assert whole is not None and len(whole.metadata["segments"]) == 3
    assert await fresh.fetch("whisper:0123456789abcdef:0") is None
    assert len(uploads(httpx_mock)) == 1


async def test_insufficient_quota_is_a_quota_error_not_retried(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "a.wav")
    httpx_mock.add_response(url=API, status_code=429, json={"error": {
        "message": "You exceeded your current quota", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}})
    with pytest.raises(ConnectorQuotaError, match="quota"):
        await make(tmp_path, max_retries=2).fetch("a.wav")
    assert len(uploads(httpx_mock)) == 1


async def test_null_fields_and_plain_json_bodies_do_not_crash(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "a.wav", tone=200)
    write_wav(tmp_path / "audio" / "b.wav", tone=900)
    sparse = {"text": None, "segments": [{"text": " battery", "start": None, "end": None, "avg_logprob": None},
                                         None, {"text": None}]}
    httpx_mock.add_response(url=API, json=sparse)
    httpx_mock.add_response(url=API, json={"text": "A plain battery transcript."})
    results = await make(tmp_path).search("battery")
    assert sorted(e.content for e in results) == ["A plain battery transcript.", "battery"]
    assert all(0.0 <= e.confidence <= 1.0 for e in results)


async def test_scores_follow_logprobs_and_file_age(httpx_mock, tmp_path):
    write_wav(tmp_path / "audio" / "new.wav", tone=440)
    old = write_wav(tmp_path / "audio" / "old.wav", tone=660)
    year_ago = time.time() - 365 * 86400
    os.utime(old, (year_ago, year_ago))
    serve(httpx_mock, {"new.wav": verbose(segment(0, 0, 2, " recycling", avg_logprob=-0.1)),
                       "old.wav": verbose(segment(0, 0, 2, " recycling", avg_logprob=-1.5))})
    by_file = {e.metadata["file"]: e for e in await make(tmp_path).search("recycling")}
    assert 0.0 < by_file["old.wav"].freshness < by_file["new.wav"].freshness <= 1.0
    assert by_file["old.wav"].confidence < by_file["new.wav"].confidence
    assert by_file["new.wav"].authority == 0.5
    assert segment_confidence({"avg_logprob": 0.0, "no_speech_prob": 0.0, "compression_ratio": 3.0}) == 0.5
    assert segment_confidence({}) == 0.5


async def test_search_without_an_audio_folder_says_what_to_set(httpx_mock):
    with pytest.raises(ConnectorValidationError, match="ARAGORA_WHISPER_AUDIO_DIR"):
        await WhisperConnector(api_key=KEY).search("battery")


async def test_corrupt_cache_file_is_ignored_and_rewritten(httpx_mock, tmp_path):
    path = write_wav(tmp_path / "audio" / "a.wav")
    cache = tmp_path / "audio" / ".aragora-transcripts" / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.json"
    cache.parent.mkdir()
    cache.write_text("{not json")
    httpx_mock.add_response(url=API, json=MEETING)
    results = await make(tmp_path).search("questions")
    assert [e.content for e in results] == ["Questions at the end."]
    assert json.loads(cache.read_text())["response"] == MEETING
